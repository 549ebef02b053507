"""A notebook in miniature for tests/test_resume.py: two named models through ``run.train``, then ``finish``.

    AE_OUTPUT_DIR=/tmp/somewhere python tests/resume_script.py [--epoch-delay SECONDS]

It trains the way every notebook does (``Run`` in the ``smoke`` profile, ``run.train``,
``finish``), on tiny synthetic data, so that the test can kill it with SIGKILL in the
middle of training and run it again. Model "chunked" streams :class:`common.data.Chunks`
(its position in the stream is checkpointed mid-pass); model "early" uses plain
``Batches`` with a validation set, ``best_on`` and ``patience``. After each epoch it
appends "<model> <epochs done>" to ``<out>/ResumeTest/progress.txt`` and sleeps
``--epoch-delay`` seconds, which gives the test time to kill it between two epochs.
"""
from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from common.data import Chunks, ImageSet
from common.run import Run
from common.report import Claim, finish, verdict
from common.train import evaluate_terms, make_optimizer, seed_everything


def _without_seconds(history) -> dict:
    """A history as data without its wall-clock seconds, which differ between any two runs."""
    return {k: v for k, v in history.to_dict().items() if k != "seconds"}


def noisy_loss(model: nn.Module, x: torch.Tensor, y) -> dict[str, torch.Tensor]:
    """Squared error of a denoising autoencoder: draws from the global RNG, as DAEs and VAEs do."""
    x = x.flatten(1)
    rec = ((model(x + 0.2 * torch.randn_like(x)) - x) ** 2).sum(1).mean()
    return {"loss": rec, "rec": rec}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epoch-delay", type=float, default=0.0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # the same arithmetic in every run of the script

    run = Run("ResumeTest", "smoke", seed=0, device="cpu")
    progress = run.out / "progress.txt"

    def after_epoch(name):
        def hook(model, history):
            with progress.open("a") as f:
                f.write(f"{name} {history.epochs}\n")
            time.sleep(args.epoch_delay)
        return hook

    g = torch.Generator().manual_seed(0)
    protos = torch.rand(4, 64, generator=g)
    data = ImageSet((protos[torch.randint(0, 4, (300,), generator=g)] * 255).to(torch.uint8).reshape(300, 1, 8, 8))
    train, val = data.subset(slice(0, 256)), data.subset(slice(256, 300))

    histories, draws = {}, {}
    for name, lr in (("chunked", 1e-2), ("early", 3e-2)):
        seed_everything(run.seed)
        model = nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 64))
        opt = make_optimizer("adam", model.parameters(), lr)
        if name == "chunked":  # 8 minibatches per pass, 3 per "epoch": epochs straddle passes
            histories[name] = run.train(name, model, noisy_loss, Chunks(train.batches(32, seed=run.seed), 3), 8,
                                        optimizer=opt, config={"data": "protos4", "n": 256}, progress=False,
                                        after_epoch=after_epoch(name))
        else:
            histories[name] = run.train(name, model, noisy_loss, train.batches(32, seed=run.seed), 10, optimizer=opt,
                                        config={"data": "protos4", "n": 256}, val=val.batches(44, shuffle=False),
                                        best_on="val/loss", patience=3, progress=False, after_epoch=after_epoch(name))
        # what the notebook computes next depends on the global RNG being where training left it
        draws[name] = {"val": evaluate_terms(model, noisy_loss, val.batches(44, shuffle=False))["loss"],
                       "rand": torch.rand(3).tolist()}

    h = histories["chunked"]
    claims = [Claim("learns", "The autoencoder's training loss falls", "falls", f"{h['train/loss'][0]:.4f} -> "
                    f"{h['train/loss'][-1]:.4f}", "last < first", verdict(h["train/loss"][-1] < h["train/loss"][0]))]
    finish(run, title="Resume test", citation="-", summary="A kill-and-resume test.", claims=claims, figures=[],
           setup={}, deviations=[], metrics={"histories": {k: _without_seconds(v) for k, v in histories.items()},
                                             "after_training": draws})


if __name__ == "__main__":
    main()
