"""gbi-npe speed: one-pass sampling, batched sampling, training time per epoch.

Measured on a box-prior toy problem (theta ~ U([-3, 3]^d), x = theta + 0.3 noise
/ sqrt(beta), beta log-uniform on [0.1, 2]) so the numbers depend on the
network sizes, not on a simulator:

* ``posterior.sample(10_000, x, beta, seed)`` for one (x, beta), per estimator
  family (target: <= 10 ms on CPU);
* ``posterior.sample(1000, X, betas, seed)`` for 1000 observations at once;
* training seconds per epoch at 10k and 100k pairs (``fit`` with fixed rows,
  and the Route B path with a beta distribution and a ``log_weights_fn``);
* the same on CUDA when a GPU is present;
* the ``sbi`` package's NPE (NSF, same sizes) in the same run when ``import
  sbi`` works, with the ratios.

Per-epoch times are the median over 3 epochs of the time each epoch takes (training
and validation), from ``History.epoch_seconds`` and from sbi's own
``summary["epoch_durations_sec"]``.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np
import torch
from _common import best_time

from gbi_npe import (
    History,
    LogUniformBeta,
    MDNConfig,
    Posterior,
    SplineFlowConfig,
    TrainConfig,
    fit,
    make_npe,
)

#: our estimators, at the sizes of sbi's NSF defaults where that applies.
FAMILIES: dict[str, Any] = {
    "nsf-coupling": SplineFlowConfig(
        kind="coupling",
        num_layers=5,
        hidden_features=50,
        num_blocks=2,
        num_bins=10,
        tail_bound=3.0,
    ),
    "nsf-autoregressive": SplineFlowConfig(
        kind="autoregressive",
        num_layers=5,
        hidden_features=50,
        num_blocks=2,
        num_bins=10,
        tail_bound=3.0,
    ),
    "mdn": MDNConfig(num_components=10, hidden_features=50, num_hidden_layers=2),
}
BETA_RANGE = (0.1, 2.0)
TARGET_MS = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--theta-dim", type=int, default=2)
    parser.add_argument("--x-dim", type=int, default=2)
    parser.add_argument(
        "--pairs",
        type=int,
        nargs="+",
        default=[10_000, 100_000],
        help="training-set sizes for the per-epoch times",
    )
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--observations", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=1000, help="per observation, batched")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0: torch's default)"
    )
    parser.add_argument("--no-sbi", action="store_true", help="skip the sbi comparison")
    parser.add_argument("--no-gpu", action="store_true", help="skip CUDA even if present")


def _data(n: int, theta_dim: int, x_dim: int, seed: int = 0, *, tempered: bool = True):
    """Pairs from the tempered joint (a beta per pair), or base pairs (beta = 1)."""
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-3.0, 3.0, (n, theta_dim))
    beta = np.exp(rng.uniform(np.log(BETA_RANGE[0]), np.log(BETA_RANGE[1]), n))
    if not tempered:
        beta = np.ones(n)
    signal = np.resize(theta, (n, x_dim)) if x_dim != theta_dim else theta
    x = signal + 0.3 * rng.normal(size=(n, x_dim)) / np.sqrt(beta)[:, None]
    return theta, x, beta


def _snis_log_weights_fn(theta: np.ndarray, x: np.ndarray):
    """Globally normalized SNIS log weights w~ ∝ p(x_i | theta_i)^(beta - 1), any beta in range.

    The Gaussian log-likelihood of the toy problem at beta = 1, with the log
    normalizer tabulated on a fine grid in log beta and interpolated.
    """
    signal = np.resize(theta, x.shape) if x.shape[1] != theta.shape[1] else theta
    log_lik = -0.5 * ((x - signal) ** 2).sum(axis=1) / 0.09
    grid = np.linspace(np.log(BETA_RANGE[0]), np.log(BETA_RANGE[1]), 257)
    log_norm = np.empty(grid.size)
    for k, log_beta in enumerate(grid):
        exponent = (np.exp(log_beta) - 1.0) * log_lik
        top = exponent.max()
        log_norm[k] = top + np.log(np.exp(exponent - top).sum())

    def log_weights_fn(beta: np.ndarray, index: np.ndarray) -> np.ndarray:
        log_w = (beta - 1.0) * log_lik[index] - np.interp(np.log(beta), grid, log_norm)
        return np.minimum(log_w, 0.0)

    return log_weights_fn


def _npe(density: Any, theta_dim: int, x_dim: int):
    return make_npe(
        theta_dim,
        x_dim,
        density=density,
        low=np.full(theta_dim, -3.0),
        high=np.full(theta_dim, 3.0),
    )


#: epochs trained per timing; the median epoch time is reported.
TIMED_EPOCHS = 3


def _train_config(epochs: int, batch_size: int, device: str) -> TrainConfig:
    return TrainConfig(
        max_epochs=epochs,
        patience=epochs + 1,
        batch_size=batch_size,
        progress=False,
        device=device,
    )


def _ours(args: argparse.Namespace, device: str) -> dict[str, Any]:
    d, dx = args.theta_dim, args.x_dim
    theta, x, beta = _data(10_000, d, dx)
    x_obs = x[0]
    many_x = x[: args.observations]
    many_beta = beta[: args.observations]
    sampling = []
    for name, density in FAMILIES.items():
        npe = _npe(density, d, dx)
        fit(npe, theta, x, beta, config=_train_config(1, args.batch_size, device))
        posterior = Posterior(npe)
        one = best_time(lambda p=posterior: p.sample(10_000, x_obs, 1.0, seed=0), repeat=5)
        batched = best_time(
            lambda p=posterior: p.sample(args.samples, many_x, many_beta, seed=0),
            repeat=1,
            min_time=0.0,
        )
        sampling.append(
            {
                "estimator": name,
                "device": device,
                "sample_10k_ms": 1e3 * one,
                "meets_10ms": 1e3 * one <= TARGET_MS,
                "batch_s": batched,
            }
        )
        print(
            f"   {device} {name}: 10k draws {1e3 * one:.1f} ms, "
            f"{args.observations}x{args.samples} {batched:.2f} s",
            flush=True,
        )
    training = []
    for pairs in args.pairs:
        theta_n, x_n, beta_n = _data(pairs, d, dx, seed=1)
        theta_base, x_base, _ = _data(pairs, d, dx, seed=2, tempered=False)
        log_weights_fn = _snis_log_weights_fn(theta_base, x_base)

        for name in ("nsf-coupling", "mdn"):
            density = FAMILIES[name]

            def rows(epochs: int, density=density, t=theta_n, xx=x_n, bb=beta_n) -> History:
                return fit(
                    _npe(density, d, dx),
                    t,
                    xx,
                    bb,
                    config=_train_config(epochs, args.batch_size, device),
                )

            def route_b(
                epochs: int, density=density, t=theta_base, xx=x_base, fn=log_weights_fn
            ) -> History:
                return fit(
                    _npe(density, d, dx),
                    t,
                    xx,
                    LogUniformBeta(*BETA_RANGE),
                    config=_train_config(epochs, args.batch_size, device),
                    log_weights_fn=fn,
                )

            paths = [("fixed rows", rows)] + ([("route B", route_b)] if name != "mdn" else [])
            for path, fn in paths:
                seconds = float(np.median(fn(TIMED_EPOCHS).epoch_seconds))
                training.append(
                    {
                        "estimator": name,
                        "device": device,
                        "pairs": pairs,
                        "path": path,
                        "seconds_per_epoch": seconds,
                    }
                )
                print(
                    f"   {device} train {name} {path} {pairs} pairs: {seconds:.2f} s/epoch",
                    flush=True,
                )
    return {"sampling": sampling, "training": training}


class _NoTracking:
    """An sbi ``Tracker`` that records nothing (sbi would write ./sbi-logs otherwise)."""

    log_dir = None

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        pass

    def log_params(self, params: dict[str, Any]) -> None:
        pass

    def add_figure(self, name: str, figure: Any, step: int | None = None) -> None:
        pass

    def flush(self) -> None:
        pass


def _sbi(args: argparse.Namespace) -> dict[str, Any]:
    try:
        import sbi
        from sbi.inference import NPE
        from sbi.neural_nets import posterior_nn
        from sbi.utils import BoxUniform
    except Exception as error:  # ImportError or a broken install
        return {"available": False, "reason": f"import sbi failed: {error!r}"}
    d, dx = args.theta_dim, args.x_dim
    prior = BoxUniform(torch.full((d,), -3.0), torch.full((d,), 3.0))
    builder = posterior_nn(model="nsf", hidden_features=50, num_transforms=5, num_bins=10)

    def trained(theta: np.ndarray, x: np.ndarray, epochs: int):
        options = {
            "prior": prior,
            "density_estimator": builder,
            "device": "cpu",
            "show_progress_bars": False,
        }
        try:
            inference = NPE(**options, tracker=_NoTracking())
        except TypeError:  # an sbi without trackers
            inference = NPE(**options)
        inference.append_simulations(
            torch.as_tensor(theta, dtype=torch.float32), torch.as_tensor(x, dtype=torch.float32)
        )
        inference.train(
            training_batch_size=args.batch_size,
            max_num_epochs=epochs,
            stop_after_epochs=epochs + 1,
            show_train_summary=False,
        )
        return inference

    # sbi's NPE conditions on x only (no beta): train on beta = 1 pairs.
    theta, x1, _ = _data(10_000, d, dx, tempered=False)
    posterior = trained(theta, x1, 1).build_posterior()
    x_obs = torch.as_tensor(x1[0], dtype=torch.float32)
    many_x = torch.as_tensor(x1[: args.observations], dtype=torch.float32)
    one = best_time(
        lambda: posterior.sample((10_000,), x=x_obs, show_progress_bars=False), repeat=5
    )
    batched = best_time(
        lambda: posterior.sample_batched((args.samples,), x=many_x, show_progress_bars=False),
        repeat=1,
        min_time=0.0,
    )
    print(
        f"   sbi nsf: 10k draws {1e3 * one:.1f} ms, "
        f"{args.observations}x{args.samples} {batched:.2f} s",
        flush=True,
    )
    training = []
    for pairs in args.pairs:
        theta_n, x_n, _ = _data(pairs, d, dx, seed=1, tempered=False)
        inference = trained(theta_n, x_n, TIMED_EPOCHS)
        seconds = float(np.median(inference.summary["epoch_durations_sec"]))
        training.append({"pairs": pairs, "seconds_per_epoch": seconds})
        print(f"   sbi train nsf {pairs} pairs: {seconds:.2f} s/epoch", flush=True)
    return {
        "available": True,
        "version": sbi.__version__,
        "sample_10k_ms": 1e3 * one,
        "batch_s": batched,
        "training": training,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    record: dict[str, Any] = {
        "theta_dim": args.theta_dim,
        "x_dim": args.x_dim,
        "torch_threads": torch.get_num_threads(),
        "observations": args.observations,
        "samples": args.samples,
        "families": {name: config.to_dict() for name, config in FAMILIES.items()},
    }
    results = _ours(args, "cpu")
    if torch.cuda.is_available() and not args.no_gpu:
        gpu = _ours(args, "cuda")
        results["sampling"] += gpu["sampling"]
        results["training"] += gpu["training"]
        record["gpu"] = torch.cuda.get_device_name(0)
    record.update(results)
    record["sbi"] = (
        {"available": False, "reason": "skipped (--no-sbi)"} if args.no_sbi else _sbi(args)
    )
    if record["sbi"]["available"]:
        ours = {s["estimator"]: s for s in record["sampling"] if s["device"] == "cpu"}
        nsf = ours["nsf-coupling"]
        ratios = {
            "sample_10k": nsf["sample_10k_ms"] / record["sbi"]["sample_10k_ms"],
            "batch": nsf["batch_s"] / record["sbi"]["batch_s"],
        }
        for entry in record["sbi"]["training"]:
            mine = next(
                t
                for t in record["training"]
                if t["device"] == "cpu"
                and t["estimator"] == "nsf-coupling"
                and t["path"] == "fixed rows"
                and t["pairs"] == entry["pairs"]
            )
            ratios[f"train_epoch_{entry['pairs']}"] = (
                mine["seconds_per_epoch"] / entry["seconds_per_epoch"]
            )
        record["ratios_gbi_over_sbi"] = ratios
    record["load_average"] = [load_before, os.getloadavg()[0]]
    return record


def to_markdown(record: dict[str, Any]) -> str:
    n_obs, n_samples = record["observations"], record["samples"]
    lines = [
        f"Toy box-prior problem, theta_dim = {record['theta_dim']}, x_dim = "
        f"{record['x_dim']}, torch threads = {record['torch_threads']}. Estimators at sbi's "
        "NSF sizes (5 layers, 50 hidden, 2 blocks, 10 bins; MDN 10 components).",
        "",
        f"| estimator | device | 10k draws, one (x, beta) | <= {TARGET_MS:g} ms | "
        f"{n_obs} x {n_samples} draws, one call |",
        "|---|---|---:|:---:|---:|",
    ]
    for s in record["sampling"]:
        lines.append(
            f"| {s['estimator']} | {s['device']} | {s['sample_10k_ms']:.1f} ms | "
            f"{'yes' if s['meets_10ms'] else 'no'} | {s['batch_s']:.2f} s |"
        )
    lines += [
        "",
        "| estimator | device | path | pairs | seconds / epoch |",
        "|---|---|---|---:|---:|",
    ]
    for t in record["training"]:
        lines.append(
            f"| {t['estimator']} | {t['device']} | {t['path']} | {t['pairs']:,} | "
            f"{t['seconds_per_epoch']:.2f} |"
        )
    sbi_record = record["sbi"]
    lines.append("")
    if not sbi_record["available"]:
        lines.append(f"sbi: not measured ({sbi_record['reason']}).")
    else:
        lines += [
            f"sbi {sbi_record['version']} NPE (NSF, same sizes, x only, CPU): 10k draws "
            f"{sbi_record['sample_10k_ms']:.1f} ms; {n_obs} x {n_samples} draws "
            f"(`sample_batched`) {sbi_record['batch_s']:.2f} s; "
            + "; ".join(
                f"{t['seconds_per_epoch']:.2f} s/epoch at {t['pairs']:,} pairs"
                for t in sbi_record["training"]
            )
            + ".",
            "",
            "Ratios gbi-npe nsf-coupling / sbi (below 1: gbi-npe faster): "
            + ", ".join(f"{k} {v:.2f}" for k, v in record["ratios_gbi_over_sbi"].items())
            + ".",
        ]
    lines += [
        "",
        "A spline flow runs its networks once per draw and layer (the autoregressive one d "
        "times per layer), so its sampling cost grows with the number of draws; the MDN "
        "computes its mixture once per observation. Load average before / after: "
        + " / ".join(f"{v:.2f}" for v in record.get("load_average", []))
        + " (the machine's cores may be shared).",
    ]
    return "\n".join(lines) + "\n"
