//! quarry-models: learners that turn samples into scores.
//!
//! [`LogisticRegression`] is the classical learner of the P1 protocol: multinomial (softmax)
//! logistic regression with an L2 penalty, solved to convergence by [`lbfgs`]. Dense products go
//! through `matrixmultiply`, which picks AVX2/FMA or AVX-512 kernels at run time.

pub mod checkpoint;
pub mod committee;
pub mod lbfgs;
pub mod linalg;
pub mod logistic;
pub mod softmax;

pub use checkpoint::Checkpoint;
pub use committee::{Committee, CommitteeKind};
pub use logistic::{LogisticRegression, LogisticRegressionLearner, LogisticRegressionParams, gradient_embedding};
pub mod efficientnet;
pub mod imagenet_input;
pub mod kernels;
pub use efficientnet::{EfficientNetError, EfficientNetLite0, predict_top_k};
pub mod nn;
pub use nn::{NetLearner, NetParams, NetSpec};
pub use efficientnet::ImagePrediction;
pub mod effnet_train;
pub mod effnet_learner;
pub use effnet_learner::{EfficientNetLearner, FineTuneParams};
pub use effnet_train::{BatchNormMode, EfficientNetTrainer, Head, TrainerParams};
pub mod feature_cache;
pub use feature_cache::{BuildReport, CacheWriter, FeatureCache, FeatureCacheError};
pub mod imagenet_classes;
pub use imagenet_classes::imagenet_class_name;
