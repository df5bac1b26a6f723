//! BERT and RoBERTa encoders (`BertModel`, `RobertaModel`), pooling, and
//! sequence-classification heads as transformers builds them.

mod attention;
mod classification;
mod config;
mod embeddings;
mod head;
mod layer;
mod model;
mod packing;
mod pooling;

pub use attention::{EncoderAttention, SelfAttention, SelfOutput};
pub use classification::{
    peek_head_labels, ClassifierOptions, HeadInit, SequenceClassificationModel,
};
pub use config::EncoderConfig;
pub use embeddings::EncoderEmbeddings;
pub use head::{
    fresh_linear, head_num_labels, BertClassificationHead, ClassificationHead,
    RobertaClassificationHead,
};
pub use layer::{EncoderLayer, Intermediate, Output};
pub use model::EncoderModel;
pub use packing::TokenPacking;
pub use pooling::{mean_pool, Pooler};
