"""beta-VAE (Higgins et al., ICLR 2017): the beta objective and the paper's models.

The objective (eq. 4 of the paper) is the VAE's bound with the KL term weighted by beta:

    F(theta, phi; x, z, beta) = E_{q_phi(z|x)}[log p_theta(x|z)] - beta * KL(q_phi(z|x) || p(z)),

with q_phi(z|x) a diagonal Gaussian and p(z) = N(0, I). beta = 1 is the VAE of Kingma &
Welling; beta > 1 pushes the posterior towards the factorised prior and, the paper
claims, makes each latent follow one generative factor (Sec. 2, Figs. 6 and 7).

Sections of this file:
- the beta objective and the KL per latent, shared by every model here;
- the 2D-shapes (dSprites) model: the fully connected net of the paper's Appendix
  (Table 1), with a Bernoulli decoder;
- the CelebA model (a convolutional net), added by the CelebA notebook's author.

Every log-density is a sum over pixels (or latents) per example, so the losses read
in nats per image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common.gaussian import LOG_2PI, gaussian_kl, reparameterize


# ---------------------------------------------------------------------------
# The beta objective (eq. 4), for any Gaussian-latent model
# ---------------------------------------------------------------------------
class GaussianLatentModel(Protocol):
    """What the objective needs from a model: q(z|x) and log p(x|z)."""

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor: ...


def kl_per_latent(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z_j|x) || N(0, 1)) for each latent j separately, shape (N, d).

    The sum over j is the KL term of eq. 4 (``common.gaussian.gaussian_kl``). Averaged
    over the data it says how much information each latent carries: the paper's claim
    that unused latents have about 0 KL (Fig. 7) is read off it.
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def beta_vae_terms(model: GaussianLatentModel, x: torch.Tensor, beta: float) -> dict[str, torch.Tensor]:
    """Per-example terms of eq. 4 with one sample z ~ q(z|x) (reparameterised), each of shape (N,).

    ``rec`` = -log p(x|z), ``kl`` = KL(q(z|x) || N(0, I)) in closed form, and
    ``objective`` = -(rec + beta * kl), the F of eq. 4 (to be maximised).
    """
    mu, logvar = model.posterior(x)
    z = reparameterize(mu, logvar)
    rec = -model.log_likelihood(x, z)
    kl = gaussian_kl(mu, logvar)
    return {"objective": -(rec + beta * kl), "rec": rec, "kl": kl}


@dataclass(frozen=True)
class BetaVAELoss:
    """``fit`` loss for eq. 4: -F averaged over the minibatch, in nats per image.

    A dataclass (not a closure) so that its repr, ``BetaVAELoss(beta=4.0)``, names
    beta in the key that ``run.train`` gives each trained model. Keys: ``loss`` (= -F),
    ``rec`` (-log p(x|z)), ``kl`` and ``elbo`` (the beta = 1 bound, comparable across
    betas).
    """

    beta: float

    def __call__(self, model: GaussianLatentModel, x: torch.Tensor, y: torch.Tensor | None = None
                 ) -> dict[str, torch.Tensor]:
        t = beta_vae_terms(model, x, self.beta)
        rec, kl = t["rec"].mean(), t["kl"].mean()
        return {"loss": -t["objective"].mean(), "rec": rec, "kl": kl, "elbo": -(rec + kl)}


@torch.no_grad()
def mean_kl_per_latent(model: GaussianLatentModel, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """KL per latent averaged over the images ``x``, shape (d,), in nats."""
    total, n = 0.0, 0
    for xb in x.split(batch_size):
        mu, logvar = model.posterior(xb)
        total = total + kl_per_latent(mu, logvar).sum(0)
        n += len(xb)
    return total / n


# ---------------------------------------------------------------------------
# 2D shapes (dSprites): the fully connected model (Appendix, Table 1)
# ---------------------------------------------------------------------------
class FCBetaVAE(nn.Module):
    """The paper's 2D-shapes net: encoder 4096-1200-1200 (ReLU) to the mean and log-variance
    of 10 Gaussian latents; decoder 10-1200-1200-1200-4096 (tanh) to Bernoulli logits.

    Images are (N, 1, 64, 64) with values in [0, 1] (binary for dSprites).
    """

    def __init__(self, z_dim: int = 10, hidden: int = 1200, image_shape: tuple[int, int, int] = (1, 64, 64)) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.x_dim = image_shape[0] * image_shape[1] * image_shape[2]
        self.z_dim = z_dim
        self.encoder = nn.Sequential(
            nn.Linear(self.x_dim, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 2 * z_dim))           # mean and log-variance
        self.decoder = nn.Sequential(
            nn.Linear(z_dim, hidden), nn.Tanh(),
            nn.Linear(hidden, hidden), nn.Tanh(),
            nn.Linear(hidden, hidden), nn.Tanh(),
            nn.Linear(hidden, self.x_dim))          # Bernoulli logits

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log sigma^2) of q(z|x), each (N, z_dim)."""
        mu, logvar = self.encoder(x.reshape(len(x), self.x_dim)).chunk(2, dim=-1)
        return mu, logvar

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean: the representation the disentanglement metric scores."""
        return self.posterior(x)[0]

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) of the Bernoulli decoder, summed over pixels, shape (N,)."""
        logits = self.decoder(z)
        return -F.binary_cross_entropy_with_logits(logits, x.reshape(len(x), self.x_dim),
                                                   reduction="none").sum(-1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities E[x|z] as images (N, C, H, W)."""
        return torch.sigmoid(self.decoder(z)).reshape(len(z), *self.image_shape)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


@torch.no_grad()
def posterior_means(model: FCBetaVAE, data, factors: np.ndarray, device: torch.device | str = "cpu",
                    batch_size: int = 5000) -> np.ndarray:
    """Encoder means (N, z_dim) of the images of ``factors`` (N, 5), rendered by ``data``
    (a :class:`common.dsprites.DSprites`) in batches, for the latent-factor statistics of Fig. 7."""
    was_training = model.training
    model.eval()
    out = [model.encode(data.observations(f, device).float().div_(255)).cpu()
           for f in np.array_split(factors, max(1, -(-len(factors) // batch_size)))]
    model.train(was_training)
    return torch.cat(out).numpy()


# ---------------------------------------------------------------------------
# CelebA: the convolutional model (Appendix, Table 1) with a Gaussian decoder
# ---------------------------------------------------------------------------
#: Pixels of a 64x64 RGB face: the N of beta_norm.
CELEBA_PIXELS = 3 * 64 * 64


def beta_norm(beta: float, latents: int, pixels: int) -> float:
    """The paper's normalised beta, beta * M / N (Sec. 4), M latents and N input values.

    It makes betas comparable across input sizes: with the reconstruction summed over N
    pixels and the KL over M latents, beta_norm is beta per latent against one per pixel.
    beta = 250 on 64x64x3 faces with 32 latents is 0.65; beta = 4 on dSprites is 0.0098.
    """
    if latents < 1 or pixels < 1:
        raise ValueError(f"latents and pixels must be >= 1, got {latents}, {pixels}")
    return beta * latents / pixels


def gaussian_pixel_log_likelihood(x: torch.Tensor, mean: torch.Tensor, std: float | torch.Tensor) -> torch.Tensor:
    """log N(x; mean, std^2 I), summed over every pixel value of each image, shape (N,).

    The full density, constant included: -SSE / (2 std^2) - N/2 log(2 pi std^2). ``std``
    is one number shared by every pixel (a float, or a scalar tensor when it is learned).
    The scale decides what a beta means: the loss is SSE / (2 std^2) + beta KL, so only
    beta std^2 matters (see the CelebA notebook's likelihood table).
    """
    if not isinstance(std, torch.Tensor) and not std > 0:  # a tensor std is checked nowhere: no host sync per step
        raise ValueError(f"decoder std must be > 0, got {std}")
    std = torch.as_tensor(std, dtype=mean.dtype, device=mean.device)
    sse = (x - mean).pow(2).flatten(1).sum(-1)
    n = x[0].numel()
    return -0.5 * sse / std ** 2 - 0.5 * n * (LOG_2PI + 2 * torch.log(std))


class ConvEncoder(nn.Module):
    """q(z|x) of the CelebA net: four 4x4 stride-2 convolutions with 32, 32, 64 and 64
    channels (64 -> 32 -> 16 -> 8 -> 4 pixels), ReLU, FC 256, then the mean and the
    log-variance of ``z_dim`` latents (Appendix, Table 1)."""

    def __init__(self, channels: int = 3, z_dim: int = 32, hidden: int = 256) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(channels, 32, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(32, 32, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(64, 64, 4, 2, 1), nn.ReLU())
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(64 * 4 * 4, hidden), nn.ReLU(), nn.Linear(hidden, 2 * z_dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.fc(self.convs(x)).chunk(2, dim=-1)
        return mu, logvar


class ConvDecoder(nn.Module):
    """p(x|z) of the CelebA net, the encoder mirrored: FC 256, FC 64x4x4, then four 4x4
    stride-2 transposed convolutions with 64, 32, 32 and ``channels`` outputs (ReLU
    between), and a sigmoid so the Gaussian means lie in the pixels' range [0, 1]."""

    def __init__(self, channels: int = 3, z_dim: int = 32, hidden: int = 256) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(), nn.Linear(hidden, 64 * 4 * 4), nn.ReLU(),
                                nn.Unflatten(1, (64, 4, 4)))
        self.deconvs = nn.Sequential(
            nn.ConvTranspose2d(64, 64, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(32, 32, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(32, channels, 4, 2, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.deconvs(self.fc(z)))


class ConvBetaVAE(nn.Module):
    """The paper's CelebA model: :class:`ConvEncoder`, :class:`ConvDecoder` and a Gaussian
    likelihood summed over the 64x64x3 pixel values, with one standard deviation for every
    pixel: fixed at ``decoder_std``, or, with ``decoder_std=None``, *calibrated*: set at
    every step to its maximum-likelihood value for the batch, sigma^2 = the mean squared
    error over the batch's pixels (floored at 1e-6). That is the optimum of a learned
    sigma in closed form (the "sigma-VAE" of Rybkin et al., 2021), so it needs no
    parameter and follows the reconstruction error as training goes; the loss becomes
    N/2 log(MSE) + beta KL + const.

    It meets ``GaussianLatentModel``, so :class:`BetaVAELoss` trains it for any beta;
    :class:`AutoencoderLoss` trains the same net as a plain deterministic autoencoder.
    ``channels_last`` keeps the conv weights and inputs in NHWC, which is faster on CPU
    (``benchmarks/conv_speed.py``); it does not change the model's function.
    """

    def __init__(self, z_dim: int = 32, channels: int = 3, hidden: int = 256, decoder_std: float | None = 1.0,
                 channels_last: bool = False) -> None:
        super().__init__()
        if decoder_std is not None and decoder_std <= 0:
            raise ValueError(f"decoder_std must be > 0 (or None: learned), got {decoder_std}")
        self.z_dim, self.channels_last = z_dim, channels_last
        self.decoder_std = None if decoder_std is None else float(decoder_std)
        self.encoder = ConvEncoder(channels, z_dim, hidden)
        self.decoder = ConvDecoder(channels, z_dim, hidden)
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, decoder_std={self.decoder_std}, channels_last={self.channels_last}"

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log sigma^2) of q(z|x), each (N, z_dim); ``x`` is (N, C, 64, 64) in [0, 1]."""
        if x.dim() != 4 or x.shape[-2:] != (64, 64):
            raise ValueError(f"ConvBetaVAE wants (N, C, 64, 64) images, got {tuple(x.shape)}")
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.encoder(x)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean, used for reconstructions, traversals and the attribute AUCs."""
        return self.posterior(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The Gaussian means E[x|z] as images (N, C, 64, 64) in [0, 1]."""
        return self.decoder(z).contiguous()

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z), summed over pixels, shape (N,) (:func:`gaussian_pixel_log_likelihood`)."""
        mean = self.decoder(z).float()
        return gaussian_pixel_log_likelihood(x, mean, self.pixel_std(x, mean))

    def pixel_std(self, x: torch.Tensor, mean: torch.Tensor) -> float | torch.Tensor:
        """The decoder's standard deviation: fixed, or calibrated on this batch (see the class)."""
        if self.decoder_std is not None:
            return self.decoder_std
        return (x - mean).pow(2).mean().clamp_min(1e-6).sqrt()

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decoder means at n draws z ~ p(z) = N(0, I)."""
        device = next(self.parameters()).device
        return self.decode(torch.randn(n, self.z_dim, generator=generator).to(device))


@dataclass(frozen=True)
class AutoencoderLoss:
    """``fit`` loss of the plain autoencoder baseline: -log p(x | z = mu(x)), no noise, no KL.

    With the Gaussian decoder this is the sum of squared errors over 2 std^2 plus a
    constant: the deterministic autoencoder the paper's figures set beside the VAEs.
    """

    def __call__(self, model: GaussianLatentModel, x: torch.Tensor, y: torch.Tensor | None = None
                 ) -> dict[str, torch.Tensor]:
        rec = -model.log_likelihood(x, model.posterior(x)[0]).mean()
        return {"loss": rec, "rec": rec}


def celeba_attributes(numbers: torch.Tensor, root=None) -> tuple[list[str], torch.Tensor]:
    """The 40 CelebA attributes of the images numbered ``numbers`` (000001.jpg is 1).

    Reads ``CelebA/list_attr_celeba.txt`` (the full file) or, failing that, the file of
    its first 20,000 rows that ships with the subset. Returns the attribute names and a
    bool tensor (len(numbers), 40), True where the attribute is present (+1 in the file).
    """
    from common.data import DataError, data_dir

    folder = (Path(root) if root is not None else data_dir()) / "CelebA"
    files = [folder / "list_attr_celeba.txt", folder / "list_attr_celeba_rows000001-020000.txt"]
    path = next((f for f in files if f.is_file()), None)
    if path is None:
        raise DataError(f"celeba: no attribute file in {folder}; expected one of {[f.name for f in files]}")
    lines = path.read_text().splitlines()
    names = lines[1].split()
    rows = [line.split() for line in lines[2:] if line.strip()]
    table = torch.tensor([[v == "1" for v in r[1:]] for r in rows])
    numbers = torch.as_tensor(numbers).long().cpu()
    if len(numbers) and (numbers.min() < 1 or numbers.max() > len(rows)):
        raise DataError(f"celeba: image numbers {int(numbers.min())}..{int(numbers.max())} are outside "
                        f"the {len(rows)} rows of {path.name}")
    if any(rows[i - 1][0] != f"{i:06d}.jpg" for i in numbers[:1].tolist()):
        raise DataError(f"celeba: {path.name} is not in image order")
    return names, table[numbers - 1]


def attribute_auc(codes: torch.Tensor, attributes: torch.Tensor) -> np.ndarray:
    """AUC of each latent mean (column of ``codes``, (N, K)) for each binary attribute ((N, A)).

    ``roc_auc_score`` of the latent's value as a score for the attribute: 0.5 is no
    relation, 1 (or 0) a latent that ranks every face with the attribute above (below)
    every face without it. Returns a (K, A) array; an attribute with one class only in
    ``attributes`` gets NaN.
    """
    from sklearn.metrics import roc_auc_score

    c = codes.detach().float().cpu().numpy()
    a = attributes.cpu().numpy().astype(int)
    out = np.full((c.shape[1], a.shape[1]), np.nan)
    both = (a.min(0) == 0) & (a.max(0) == 1)
    for k in range(c.shape[1]):  # one vectorised call per latent, over every attribute
        out[k, both] = roc_auc_score(a[:, both], np.repeat(c[:, k:k + 1], both.sum(), 1), average=None)
    return out


def predicted_active_directions(eigenvalues: torch.Tensor, beta: float, decoder_std: float) -> int:
    """How many principal directions of the data a *linear* Gaussian beta-VAE keeps.

    For a linear decoder with fixed noise std, the optimum encodes direction i only if
    its data variance exceeds beta * std^2 (the posterior-collapse condition of the
    linear VAE; a latent that does not pay for its KL is switched off). A convolutional
    decoder does better than linear, so this is a rough lower bound; it shows how the
    likelihood's scale decides what a given beta means.
    """
    return int((torch.as_tensor(eigenvalues) > beta * decoder_std ** 2).sum())


def principal_components(x: torch.Tensor, k: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean (D,), top-``k`` principal directions (k, D) and their variances (k,) of images (N, ...)."""
    flat = x.detach().float().flatten(1)
    mean = flat.mean(0)
    torch.manual_seed(seed)  # pca_lowrank draws a random starting subspace
    _, s, v = torch.pca_lowrank(flat - mean, q=min(k + 10, *flat.shape), center=False, niter=4)
    return mean, v[:, :k].T.contiguous(), (s[:k] ** 2 / (len(flat) - 1))


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to the rows of ``a`` and ``b`` (the formula of FID):

    |m_a - m_b|^2 + tr(C_a + C_b - 2 (C_a^1/2 C_b C_a^1/2)^1/2), in float64.
    """
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"want two (n >= 2, d) feature sets of the same d, got {tuple(a.shape)}, {tuple(b.shape)}")
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    ca, cb = torch.cov(a.T).reshape(a.shape[1], -1), torch.cov(b.T).reshape(b.shape[1], -1)

    def sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
        w, u = torch.linalg.eigh((m + m.T) / 2)
        return (u * w.clamp_min(0).sqrt()) @ u.T

    ra = sqrtm_psd(ca)
    cross = sqrtm_psd(ra @ cb @ ra)
    return float((a.mean(0) - b.mean(0)).pow(2).sum() + torch.trace(ca + cb - 2 * cross))


def pca_frechet_distance(images: torch.Tensor, reference: torch.Tensor, mean: torch.Tensor,
                         components: torch.Tensor) -> float:
    """Sample quality without downloaded weights: the Frechet distance between ``images`` and
    ``reference`` (both (N, C, H, W) in [0, 1]) in a fixed feature space, the top principal
    components of the training faces (:func:`principal_components`).

    Like FID it compares the mean and the covariance of the two sets, so blur (too little
    variance along the sharper components), a mean shift and mode collapse all raise it.
    Unlike FID its features are linear, so it sees colour and layout, not texture.
    """
    def feats(x: torch.Tensor) -> torch.Tensor:
        return (x.detach().float().flatten(1).to(mean.device) - mean) @ components.T

    return frechet_distance(feats(images), feats(reference))


def laplacian_energy(images: torch.Tensor) -> torch.Tensor:
    """Mean squared response of the 3x3 Laplacian per image, shape (N,): a sharpness score.

    Blur removes the high frequencies the Laplacian responds to, so the ratio of a
    reconstruction's score to its input's says how much sharper or blurrier it is.
    """
    k = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], device=images.device)
    c = images.shape[1]
    out = F.conv2d(images.float(), k.expand(c, 1, 3, 3), groups=c)
    return out.pow(2).flatten(1).mean(-1)


@torch.no_grad()
def gaussian_code_samples(codes: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n draws from a full-covariance Gaussian fitted to ``codes`` (N, d).

    The plain autoencoder has no prior to sample from; decoding draws from a Gaussian
    fitted to its training codes is the usual stand-in (ex-post density estimation).
    """
    codes = codes.detach().double().cpu()
    mean, cov = codes.mean(0), torch.cov(codes.T)
    chol = torch.linalg.cholesky(cov + 1e-6 * torch.eye(len(cov), dtype=cov.dtype))
    eps = torch.randn(n, codes.shape[1], generator=generator, dtype=torch.float64)
    return (mean + eps @ chol.T).float()


@torch.no_grad()
def code_statistics(model: ConvBetaVAE, x: torch.Tensor, batch_size: int = 500) -> dict[str, torch.Tensor]:
    """Encode and reconstruct images ``x`` (N, C, H, W) in [0, 1] at the posterior mean.

    Returns ``mu`` (N, d), ``kl`` (N, d) the KL of each latent (the rate, once summed;
    meaningless for the plain autoencoder, whose log-variance is never trained), ``sse``
    (N,) the squared error of the reconstruction summed over pixels (the distortion),
    and ``sharpness`` (N,) the reconstruction's Laplacian energy over its input's.
    """
    was_training = model.training
    model.eval()
    out: dict[str, list[torch.Tensor]] = {"mu": [], "kl": [], "sse": [], "sharpness": []}
    for xb in x.split(batch_size):
        mu, logvar = model.posterior(xb)
        rec = model.decode(mu)
        out["mu"].append(mu)
        out["kl"].append(kl_per_latent(mu, logvar))
        out["sse"].append((rec - xb).pow(2).flatten(1).sum(-1))
        out["sharpness"].append(laplacian_energy(rec) / laplacian_energy(xb).clamp_min(1e-12))
    model.train(was_training)
    return {k: torch.cat(v) for k, v in out.items()}


def auc_standard_error(auc: np.ndarray | float, n_pos: int, n_neg: int) -> np.ndarray:
    """Standard error of an AUC estimated from n_pos positive and n_neg negative examples.

    The Hanley & McNeil (1982) formula: with Q1 = A / (2 - A) and Q2 = 2 A^2 / (1 + A),
    se^2 = (A (1 - A) + (n_pos - 1)(Q1 - A^2) + (n_neg - 1)(Q2 - A^2)) / (n_pos n_neg).
    """
    a = np.asarray(auc, dtype=float)
    q1, q2 = a / (2 - a), 2 * a ** 2 / (1 + a)
    var = (a * (1 - a) + (n_pos - 1) * (q1 - a ** 2) + (n_neg - 1) * (q2 - a ** 2)) / (n_pos * n_neg)
    return np.sqrt(np.clip(var, 0, None))
