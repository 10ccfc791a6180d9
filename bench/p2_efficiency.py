import csv,sys
from collections import defaultdict
def curves(path, col="accuracy"):
    c=defaultdict(lambda: defaultdict(list))
    for r in csv.DictReader(open(path)): c[r['strategy']][int(r['labels'])].append(float(r[col]))
    return {s:sorted((n,sum(v)/len(v)) for n,v in d.items()) for s,d in c.items()}
base=curves(sys.argv[1], sys.argv[3] if len(sys.argv)>3 else "accuracy")
var=curves(sys.argv[2], sys.argv[3] if len(sys.argv)>3 else "accuracy")
t=base['random'][-1][1]; nr=next(n for n,a in base['random'] if a>=t)
for s,c in var.items():
    n=next((n for n,a in c if a>=t),None)
    below=[n2 for (n2,a),(n3,b) in zip(c,base['random']) if a<b-1e-9]
    print(f"{s}: target {t:.4f} (random {nr}) reaches at {n} -> {nr/n if n else 0:.2f}x; points below protocol random: {len(below)} {below[:8]}")

# Spread over seeds: each seed's labels to the target (protocol random's final mean), and its efficiency
# against the protocol random's mean-curve labels.
def per_seed(path, col):
    c=defaultdict(lambda: defaultdict(dict))
    for r in csv.DictReader(open(path)): c[r['strategy']][int(r['seed'])][int(r['labels'])]=float(r[col])
    return c
col = sys.argv[3] if len(sys.argv)>3 else "accuracy"
for s,seeds in per_seed(sys.argv[2], col).items():
    effs=[]
    for seed,pts in sorted(seeds.items()):
        n=next((n for n,a in sorted(pts.items()) if a>=t),None)
        effs.append(nr/n if n else 0.0)
    m=sum(effs)/len(effs); sd=(sum((e-m)**2 for e in effs)/len(effs))**0.5
    print(f"  {s} per seed: " + ", ".join(f"{e:.2f}x" for e in effs) + f"  (mean {m:.2f}x ± {sd:.2f})")
