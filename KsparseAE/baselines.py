"""Table 1's other rows (Makhzani & Frey 2014, sec. 5): the baselines beside the k-sparse features, and fine-tuning.

The paper lists, under the same logistic regression, an RBM (1.81%), a dropout autoencoder
with 50% of its hidden units dropped (1.80%), a denoising one with 20% input dropout (1.95%:
``DenoisingAE.denoising``) and one with both (1.60%); then supervised fine-tuning of the
k = 25 network (1.08%), of a deep k-sparse network (0.97%) and the same net without
pretraining (1.60%). It describes none of these networks further. Our readings:

- the dropout autoencoders are this project's tied sigmoid autoencoder (784-1000, cross-entropy,
  ``DenoisingAE.denoising.TiedAutoencoder``) with inverted dropout on the hidden units, and
  masking noise on the input for "dropout + denoising" (:func:`dropout_dae_loss`);
- the RBM is ``KsparseAE.rbm`` (binary, CD-1), its features p(h = 1 | x);
- a fine-tuned network is the pretrained encoder layers, each keeping its alpha*k largest
  activities as at test time (sec. 3.2), under a softmax layer, all trained on the labels
  (:class:`KSparseClassifier`); the deep one stacks a second k-sparse autoencoder trained on
  the first one's features (greedy layer-wise, as sec. 5 says), its size our choice.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from DenoisingAE.denoising import TiedAutoencoder, cross_entropy, masking_noise
from KsparseAE.ksparse import KSparseAutoencoder, n_features_kept, top_k


def dropout_dae_loss(input_nu: float, hidden_p: float) -> Callable:
    """``fit`` loss of a dropout (denoising) autoencoder: cross-entropy of the clean x from f(x~) with dropout.

    x~ is ``masking_noise(x, input_nu)`` (``input_nu = 0``: the clean x) and each hidden unit is
    dropped with probability ``hidden_p`` (inverted dropout: the kept ones are scaled by
    1 / (1 - p), so the encoder needs no rescaling at test time). In eval mode, as in
    ``fit``'s validation pass, neither noise is applied.
    """
    if not (0 <= input_nu < 1 and 0 <= hidden_p < 1):
        raise ValueError(f"input_nu and hidden_p must be in [0, 1), got {input_nu}, {hidden_p}")

    def dropout_dae(model: TiedAutoencoder, x: torch.Tensor, y=None) -> dict[str, torch.Tensor]:
        x = x.reshape(len(x), -1)
        x_tilde = masking_noise(x, input_nu) if (model.training and input_nu > 0) else x
        h = F.dropout(model.encode(x_tilde), hidden_p, model.training)
        rec = cross_entropy(model.decode_logits(h), x).mean()
        return {"loss": rec, "rec": rec}

    return dropout_dae


class KSparseClassifier(nn.Module):
    """Encoder layers h_l = top_{alpha k_l}(W_l^T h_{l-1} + b_l), then a softmax layer: the fine-tuned network.

    Each layer starts from a k-sparse autoencoder's (W, b) and keeps as many activities as its
    test-time encoding (``n_features_kept(alpha, k, hidden)``); the gradient flows through the
    kept units only, as in the autoencoder. The softmax layer starts at zero. Built from freshly
    initialised autoencoders, it is the "without pretraining" network.
    """

    def __init__(self, encoders: Sequence[KSparseAutoencoder], alpha: float, n_classes: int = 10) -> None:
        super().__init__()
        if not encoders:
            raise ValueError("a KSparseClassifier needs at least one encoder layer")
        self.layers = nn.ModuleList()
        self.keep: list[int] = []
        for enc in encoders:
            d, h = enc.W.shape
            lin = nn.Linear(d, h)
            with torch.no_grad():
                lin.weight.copy_(enc.W.t())
                lin.bias.copy_(enc.b)
            self.layers.append(lin)
            self.keep.append(n_features_kept(alpha, enc.k_target, h))
        for a, b in zip(self.layers, self.layers[1:]):
            if a.out_features != b.in_features:
                raise ValueError(f"layer sizes do not chain: {a.out_features} units feed {b.in_features} inputs")
        self.out = nn.Linear(self.layers[-1].out_features, n_classes)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def extra_repr(self) -> str:
        return f"keep={self.keep}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(len(x), -1)
        for lin, keep in zip(self.layers, self.keep):
            h = top_k(lin(h), keep)
        return self.out(h)
