"""Tiny keras-hub transformers built from configs, with random weights.

No preset, weight or tokenizer is downloaded: every model is built from its
constructor arguments, a few thousand parameters each.
"""

import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")

VOCABULARY = 50
SEQUENCE = 8


def gpt2_backbone(num_layers=2, hidden_dim=16):
    return keras_hub.models.GPT2Backbone(
        vocabulary_size=VOCABULARY,
        num_layers=num_layers,
        num_heads=2,
        hidden_dim=hidden_dim,
        intermediate_dim=2 * hidden_dim,
        max_sequence_length=2 * SEQUENCE,
        dropout=0.0,  # deterministic training steps, comparable runs
    )


def gpt2(num_layers=2, hidden_dim=16):
    """A GPT-2 causal LM (the output projection is the tied embedding)."""
    return keras_hub.models.GPT2CausalLM(
        backbone=gpt2_backbone(num_layers, hidden_dim), preprocessor=None
    )


def gemma():
    """A Gemma causal LM (tied embedding, RMSNorm, grouped-query heads)."""
    backbone = keras_hub.models.GemmaBackbone(
        vocabulary_size=VOCABULARY,
        num_layers=2,
        num_query_heads=2,
        num_key_value_heads=1,
        hidden_dim=16,
        intermediate_dim=32,
        head_dim=8,
    )
    return keras_hub.models.GemmaCausalLM(backbone=backbone, preprocessor=None)


def gemma3():
    """A Gemma 3 causal LM: tied embedding, RMSNorm on queries and keys."""
    backbone = keras_hub.models.Gemma3Backbone(
        vocabulary_size=VOCABULARY,
        image_size=16,
        num_layers=2,
        num_query_heads=2,
        num_key_value_heads=1,
        hidden_dim=16,
        intermediate_dim=32,
        head_dim=8,
        use_query_key_norm=True,
    )
    return keras_hub.models.Gemma3CausalLM(backbone=backbone, preprocessor=None)


def llama(num_layers=2, hidden_dim=16):
    """A Llama causal LM with an untied output projection."""
    backbone = keras_hub.models.LlamaBackbone(
        vocabulary_size=VOCABULARY,
        num_layers=num_layers,
        num_query_heads=2,
        num_key_value_heads=1,
        hidden_dim=hidden_dim,
        intermediate_dim=2 * hidden_dim,
        tie_word_embeddings=False,
    )
    return keras_hub.models.LlamaCausalLM(backbone=backbone, preprocessor=None)


def tokens(n=8, seed=0, padded=True):
    """`({"token_ids", "padding_mask"}, next_tokens)`; with `padded`, row i
    ends in `i % 4` pad positions (id 0, mask False)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, VOCABULARY, (n, SEQUENCE + 1)).astype("int32")
    mask = np.ones((n, SEQUENCE), bool)
    if padded:
        for i in range(n):
            pads = i % 4
            if pads:
                mask[i, SEQUENCE - pads :] = False
    x = {"token_ids": np.where(mask, ids[:, :-1], 0), "padding_mask": mask}
    return x, ids[:, 1:]
