//! Word, position and token-type embeddings of BERT and RoBERTa.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

use super::attention::layer_norm;
use super::config::EncoderConfig;
use super::packing::TokenPacking;
use crate::config::ModelFamily;
use crate::nn::Dropout;
use crate::train::frozen;

/// `LayerNorm(word + position + token_type)` then dropout (`BertEmbeddings` /
/// `RobertaEmbeddings`).
///
/// BERT numbers positions `0..s`; RoBERTa numbers real tokens from `pad_token_id + 1` and
/// gives padding the position `pad_token_id`, as transformers'
/// `create_position_ids_from_input_ids`.
#[derive(Module, Debug)]
pub struct EncoderEmbeddings<B: Backend> {
    /// `[vocab, hidden]`.
    pub word_embeddings: Embedding<B>,
    /// `[max_positions, hidden]`.
    pub position_embeddings: Embedding<B>,
    /// `[type_vocab, hidden]`.
    pub token_type_embeddings: Embedding<B>,
    /// The normalisation after the sum.
    pub layer_norm: LayerNorm<B>,
    /// Dropout (training only).
    pub dropout: Dropout,
    family: ModelFamily,
    pad_id: u32,
}

impl<B: Backend> EncoderEmbeddings<B> {
    /// Randomly initialised, frozen embeddings (filled from a checkpoint by
    /// [`EncoderModel`](super::EncoderModel)'s Hugging Face name table).
    pub fn init(config: &EncoderConfig, device: &B::Device) -> Self {
        let h = config.hidden_size;
        let embedding = |n: usize| frozen(EmbeddingConfig::new(n, h).init(device));
        Self {
            word_embeddings: embedding(config.vocab_size),
            position_embeddings: embedding(config.max_position_embeddings),
            token_type_embeddings: embedding(config.type_vocab_size),
            layer_norm: layer_norm(config, device),
            dropout: Dropout::new(config.hidden_dropout_prob),
            family: config.family,
            pad_id: config.pad_id(),
        }
    }

    /// The position ids of `input_ids` `[b, s]`.
    pub fn position_ids(&self, input_ids: &Tensor<B, 2, Int>) -> Tensor<B, 2, Int> {
        let [b, s] = input_ids.dims();
        let device = input_ids.device();
        match self.family {
            ModelFamily::Roberta => {
                let real = input_ids.clone().not_equal_elem(self.pad_id as i64).int();
                (real.clone().cumsum(1) * real).add_scalar(self.pad_id as i64)
            }
            _ => Tensor::<B, 1, Int>::arange(0..s as i64, &device)
                .reshape([1, s])
                .expand([b, s]),
        }
    }

    /// # Shapes
    /// - input_ids, token_type_ids: `[b, s]` (token types default to 0)
    /// - output: `[b, s, hidden]`
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> Tensor<B, 3> {
        let positions = self.position_ids(&input_ids);
        let types = token_type_ids.unwrap_or_else(|| input_ids.zeros_like());
        self.embed(input_ids, positions, types)
    }

    /// The embeddings of the real tokens only (see [`TokenPacking`]).
    ///
    /// # Shapes
    /// - input_ids, token_type_ids: `[b, s]` (token types default to 0)
    /// - output: `[tokens, hidden]`
    pub fn forward_packed(
        &self,
        input_ids: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
        packing: &TokenPacking<B>,
    ) -> Tensor<B, 2> {
        let positions = self.position_ids(&input_ids);
        let types = token_type_ids.unwrap_or_else(|| input_ids.zeros_like());
        let tokens = packing.tokens();
        let row = |ids: Tensor<B, 2, Int>| packing.pack_ids(ids).reshape([1, tokens]);
        let x = self.embed(row(input_ids), row(positions), row(types));
        let [_, _, hidden] = x.dims();
        x.reshape([tokens, hidden])
    }

    /// `dropout(LayerNorm(word + position + token_type))` of id tensors `[b, s]`.
    fn embed(
        &self,
        input_ids: Tensor<B, 2, Int>,
        positions: Tensor<B, 2, Int>,
        types: Tensor<B, 2, Int>,
    ) -> Tensor<B, 3> {
        let x = self.word_embeddings.forward(input_ids)
            + self.position_embeddings.forward(positions)
            + self.token_type_embeddings.forward(types);
        self.dropout.forward(self.layer_norm.forward(x))
    }
}
