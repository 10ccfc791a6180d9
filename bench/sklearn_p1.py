#!/usr/bin/env python3
"""scikit-learn reference run of the P1 active-learning protocol (see ../shared/BENCHMARK.md, P1,
and ../shared/anchors/P1-RESULTS.md), for wall-clock comparison with quarry on the same machine.

numpy + scikit-learn; scikit-activeml for its strategies (qbc-vote-entropy, qbc-kl, density-entropy,
coreset, badge, expected-error-reduction). Example:

    python3 -m venv /tmp/skvenv && /tmp/skvenv/bin/pip install -q numpy scikit-learn scikit-activeml==1.0.1
    /tmp/skvenv/bin/python bench/sklearn_p1.py --data digits --budget 300 --seeds 5 --jobs 2
    /tmp/skvenv/bin/python bench/sklearn_p1.py --data breast-cancer --strategies random,qbc-vote-entropy,coreset,badge

Protocol (as the anchors):
* LogisticRegression(C=1.0, max_iter=1000) on features standardized by a StandardScaler fitted on the
  whole pool (digits, breast cancer). Fashion-MNIST: pixels/255, no scaler, max_iter=300,
  pool = first 20000 training images, test = t10k.
* digits / breast cancer: train_test_split(test_size=0.3, stratify=y, random_state=seed).
* Start: np.random.default_rng(seed).choice(pool, 10, replace=False), redrawn until >= 2 classes.
* Each round: fit on the labeled set, record test accuracy, query a batch of 10 (random:
  np.random.default_rng([seed, 12345]); least-confidence / margin / entropy: top 10 by score on
  predict_proba of the unlabeled pool), reveal the labels. Curve points at 10, 20, ..., budget; as in
  the anchors, a query is also made in the round of the last curve point (so every round is
  fit + accuracy + query).
* AULC = mean of the curve. Full-pool accuracy = same learner fitted on the whole pool (per seed for
  digits / breast cancer; once for Fashion-MNIST, whose pool/test do not depend on the seed).

Timing: TOTAL = wall-clock from after the imports (data loading included) to the end of all runs.
s/round = mean over all rounds of all runs of (fit + test accuracy + query), each measured in its worker;
CPU s/round = the same with time.process_time() (less sensitive to other load on the machine).
"""
import os

# one BLAS/OpenMP thread per process, like the anchors (set before numpy is imported; inherited by
# the forked workers).
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse
import csv
import gzip
import json
import multiprocessing as mp
import platform
import resource
import sys
import time
import warnings

import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

DATA_DIR_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data")
STRATEGIES = ("random", "least-confidence", "margin", "entropy")
# scikit-activeml strategies (imported only when asked for), named as quarry names them.
SKACTIVEML = ("qbc-vote-entropy", "qbc-kl", "density-entropy", "coreset", "badge", "expected-error-reduction")
EER_CANDIDATES = 100
BATCH = 10
INIT = 10

# filled in the parent before the pool is created (fork: workers inherit them)
_DATA = {}


def _read_csv(path, label_col):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], [r for r in rows[1:] if r]
    li = header.index(label_col)
    X = np.array([[float(v) for j, v in enumerate(r) if j != li] for r in body], dtype=np.float64)
    labels = np.array([r[li] for r in body])
    _, y = np.unique(labels, return_inverse=True)
    return X, y.astype(np.int64)


def _read_idx(path):
    with gzip.open(path, "rb") as f:
        buf = f.read()
    magic = int.from_bytes(buf[0:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(buf[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(buf, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(data, data_dir):
    """Returns dict with either raw X, y (split per seed) or fixed pool/test arrays."""
    if data == "digits":
        X, y = _read_csv(os.path.join(data_dir, "digits-8x8.csv"), "digit")
        return {"kind": "split", "X": X, "y": y, "max_iter": 1000}
    if data == "breast-cancer":
        X, y = _read_csv(os.path.join(data_dir, "breast-cancer.csv"), "diagnosis")
        return {"kind": "split", "X": X, "y": y, "max_iter": 1000}
    if data == "fashion-mnist":
        d = os.path.join(data_dir, "fashion-mnist")
        Xtr = _read_idx(os.path.join(d, "train-images-idx3-ubyte.gz"))[:20000]
        ytr = _read_idx(os.path.join(d, "train-labels-idx1-ubyte.gz"))[:20000]
        Xte = _read_idx(os.path.join(d, "t10k-images-idx3-ubyte.gz"))
        yte = _read_idx(os.path.join(d, "t10k-labels-idx1-ubyte.gz"))
        Xp = Xtr.reshape(len(Xtr), -1).astype(np.float64) / 255.0
        Xt = Xte.reshape(len(Xte), -1).astype(np.float64) / 255.0
        return {"kind": "fixed", "Xp": Xp, "yp": ytr.astype(np.int64), "Xt": Xt, "yt": yte.astype(np.int64),
                "max_iter": 300}
    raise ValueError(data)


def pool_test(seed):
    """Pool and test arrays for this seed (scaled as the protocol says)."""
    D = _DATA
    if D["kind"] == "fixed":
        return D["Xp"], D["yp"], D["Xt"], D["yt"]
    Xp, Xt, yp, yt = train_test_split(D["X"], D["y"], test_size=0.3, stratify=D["y"], random_state=seed)
    sc = StandardScaler().fit(Xp)
    return sc.transform(Xp), yp, sc.transform(Xt), yt


def learner():
    return LogisticRegression(C=1.0, max_iter=_DATA["max_iter"])


def initial(seed, yp):
    rng = np.random.default_rng(seed)
    pool = np.arange(len(yp))
    while True:
        idx = rng.choice(pool, INIT, replace=False)
        if len(np.unique(yp[idx])) >= 2:
            return idx


def scores(strategy, P):
    """Higher = query first."""
    if strategy == "least-confidence":
        return 1.0 - P.max(axis=1)
    if strategy == "margin":
        s = np.sort(P, axis=1)
        return -(s[:, -1] - s[:, -2])
    if strategy == "entropy":
        with np.errstate(divide="ignore", invalid="ignore"):
            return -np.sum(np.where(P > 0, P * np.log(P), 0.0), axis=1)
    raise ValueError(strategy)


def skactiveml_query(strategy, seed, rnd, Xp, yp, labeled, clf, density):
    """One batch from scikit-activeml 1.0.1, set up as the anchors describe (../shared/anchors/P1-RESULTS.md)."""
    from skactiveml.classifier import SklearnClassifier
    from skactiveml import pool as skp
    from sklearn.ensemble import BaggingClassifier
    classes = np.unique(_DATA["yp"] if _DATA["kind"] == "fixed" else _DATA["y"])
    y = np.where(labeled, yp, np.nan).astype(float)
    rs = seed * 1000 + rnd
    if strategy in ("qbc-vote-entropy", "qbc-kl"):
        ens = SklearnClassifier(BaggingClassifier(learner(), n_estimators=5, random_state=rs), classes=classes,
                                random_state=rs)
        method = "vote_entropy" if strategy == "qbc-vote-entropy" else "KL_divergence"
        return skp.QueryByCommittee(method=method, random_state=rs).query(Xp, y, ens, batch_size=BATCH)
    sk_clf = SklearnClassifier(learner(), classes=classes, random_state=rs)
    if strategy == "density-entropy":
        return skp.UncertaintySampling(method="entropy", random_state=rs).query(
            Xp, y, sk_clf, utility_weight=density, batch_size=BATCH)
    if strategy == "coreset":
        return skp.CoreSet(random_state=rs).query(Xp, y, batch_size=BATCH)
    if strategy == "badge":
        return skp.Badge(random_state=rs).query(Xp, y, sk_clf, batch_size=BATCH)
    if strategy == "expected-error-reduction":
        unl = np.flatnonzero(~labeled)
        cand = np.random.default_rng([seed, rnd, 777]).choice(unl, min(EER_CANDIDATES, len(unl)), replace=False)
        return skp.MonteCarloEER(method="misclassification_loss", random_state=rs).query(
            Xp, y, sk_clf, candidates=cand, batch_size=BATCH)
    raise ValueError(strategy)


def pool_density(Xp):
    """Mean similarity 1 / (1 + euclidean distance) of each pool sample to the pool (β = 1)."""
    out = np.empty(len(Xp))
    for i in range(0, len(Xp), 512):
        d = np.sqrt(np.maximum(((Xp[i:i + 512, None, :] - Xp[None, :, :]) ** 2).sum(-1), 0.0))
        out[i:i + 512] = (1.0 / (1.0 + d)).mean(1)
    return out


def run_one(job):
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    kind = job[0]
    if kind == "full":
        _, seed = job
        Xp, yp, Xt, yt = pool_test(seed)
        t = time.perf_counter()
        clf = learner().fit(Xp, yp)
        acc = float((clf.predict(Xt) == yt).mean())
        return {"job": list(job), "acc": acc, "fit_s": time.perf_counter() - t}
    _, strategy, seed, budget = job
    Xp, yp, Xt, yt = pool_test(seed)
    labeled = np.zeros(len(yp), dtype=bool)
    labeled[initial(seed, yp)] = True
    rrng = np.random.default_rng([seed, 12345])
    density = pool_density(Xp) if strategy == "density-entropy" else None
    n_labels, accs, round_s, query_s, cpu_s = [], [], [], [], []
    while True:
        n = int(labeled.sum())
        c0 = time.process_time()
        t0 = time.perf_counter()
        clf = learner().fit(Xp[labeled], yp[labeled])
        acc = float((clf.predict(Xt) == yt).mean())
        t1 = time.perf_counter()
        unl = np.flatnonzero(~labeled)
        if strategy == "random":
            pick = rrng.choice(unl, BATCH, replace=False)
        elif strategy in SKACTIVEML:
            pick = skactiveml_query(strategy, seed, len(n_labels), Xp, yp, labeled, clf, density)
        else:
            s = scores(strategy, clf.predict_proba(Xp[unl]))
            pick = unl[np.argsort(-s, kind="stable")[:BATCH]]
        t2 = time.perf_counter()
        cpu_s.append(time.process_time() - c0)
        n_labels.append(n)
        accs.append(acc)
        round_s.append(t2 - t0)
        query_s.append(t2 - t1)
        if n >= budget:
            break
        labeled[pick] = True
    return {"job": list(job), "n_labels": n_labels, "acc": accs, "round_s": round_s, "query_s": query_s,
            "cpu_s": cpu_s,
            "aulc": float(np.mean(accs)), "final": accs[-1]}


def _skactiveml_version():
    try:
        import skactiveml
        return skactiveml.__version__
    except ImportError:
        return None


def main():
    t_start = time.perf_counter()
    _ru = resource.getrusage(resource.RUSAGE_SELF)
    cpu_at_start = _ru.ru_utime + _ru.ru_stime
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, choices=["digits", "breast-cancer", "fashion-mnist"])
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1")
    ap.add_argument("--budget", type=int, default=None, help="default: 300 / 150 / 1000")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--data-dir", default=DATA_DIR_DEFAULT)
    ap.add_argument("--json", default=None, metavar="OUT")
    a = ap.parse_args()
    strategies = [s.strip().replace("_", "-") for s in a.strategies.split(",") if s.strip()]
    for s in strategies:
        if s not in STRATEGIES + SKACTIVEML:
            ap.error(f"unknown strategy {s}")
    budget = a.budget or {"digits": 300, "breast-cancer": 150, "fashion-mnist": 1000}[a.data]

    _DATA.update(load(a.data, a.data_dir))
    t_loaded = time.perf_counter()

    full_seeds = [0] if _DATA["kind"] == "fixed" else list(range(a.seeds))
    jobs = [("full", s) for s in full_seeds]
    # longest first (fashion-mnist full fit) so 2 workers balance well
    jobs += [("run", st, sd, budget) for st in strategies for sd in range(a.seeds)]

    results = []
    if a.jobs <= 1:
        for j in jobs:
            results.append(run_one(j))
    else:
        ctx = mp.get_context("fork")
        with ctx.Pool(a.jobs) as pool:
            for r in pool.imap_unordered(run_one, jobs):
                results.append(r)
                if _DATA["kind"] == "fixed":  # long runs: show progress
                    print(f"  done {r['job']} ({time.perf_counter() - t_start:.0f} s)", flush=True)
    total = time.perf_counter() - t_start
    ru_s, ru_c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_total = ru_s.ru_utime + ru_s.ru_stime + ru_c.ru_utime + ru_c.ru_stime - cpu_at_start

    full = [r for r in results if r["job"][0] == "full"]
    runs = [r for r in results if r["job"][0] == "run"]
    all_round = [x for r in runs for x in r["round_s"]]
    out = {
        "data": a.data, "budget": budget, "seeds": a.seeds, "jobs": a.jobs, "strategies": strategies,
        "total_s": total, "load_s": t_loaded - t_start,
        "rounds": len(all_round), "s_per_round": float(np.mean(all_round)),
        "sum_round_s": float(np.sum(all_round)),
        "cpu_s_per_round": float(np.mean([x for r in runs for x in r["cpu_s"]])),
        "cpu_total_s": cpu_total,
        "sum_full_fit_s": float(sum(r["fit_s"] for r in full)),
        "full_pool_acc_mean": float(np.mean([r["acc"] for r in full])),
        "full_pool_acc_std": float(np.std([r["acc"] for r in full])),
        "per_strategy": {},
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "sklearn": sklearn.__version__, "skactiveml": _skactiveml_version()},
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS",
                                               "OPENBLAS_NUM_THREADS")},
        "runs": sorted(runs, key=lambda r: (r["job"][1], r["job"][2])),
    }
    try:
        from threadpoolctl import threadpool_info
        out["blas"] = [{k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
                       for i in threadpool_info()]
    except Exception:
        pass
    print(f"P1 scikit-learn {sklearn.__version__} numpy {np.__version__} python {platform.python_version()}"
          f" | data={a.data} budget={budget} seeds={a.seeds} jobs={a.jobs}")
    for st in strategies:
        rs = [r for r in runs if r["job"][1] == st]
        au = np.array([r["aulc"] for r in rs])
        fi = np.array([r["final"] for r in rs])
        rsec = [x for r in rs for x in r["round_s"]]
        out["per_strategy"][st] = {"aulc_mean": float(au.mean()), "aulc_std": float(au.std()),
                                   "final_mean": float(fi.mean()), "final_std": float(fi.std()),
                                   "s_per_round": float(np.mean(rsec)),
                                   "aulc_per_seed": [float(x) for x in au]}
        print(f"  {st:17s} AULC {au.mean():.4f} ± {au.std():.4f}   final {fi.mean():.4f} ± {fi.std():.4f}"
              f"   s/round {np.mean(rsec):.4f}")
    print(f"  full-pool accuracy {out['full_pool_acc_mean']:.4f} ± {out['full_pool_acc_std']:.4f}"
          f" ({len(full)} fit(s), {out['sum_full_fit_s']:.2f} s)")
    print(f"  TOTAL wall-clock {total:.2f} s (data loading {out['load_s']:.2f} s; CPU {cpu_total:.2f} s),"
          f" {len(all_round)} rounds,"
          f" mean {out['s_per_round']:.4f} s/round (CPU {out['cpu_s_per_round']:.4f} s/round)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
