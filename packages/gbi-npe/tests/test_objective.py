"""The weighted objective: global per-beta normalization and Prop. B.2 unbiasedness."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gbi_npe import GridBeta, SplineFlowConfig, minibatch_loss, normalize_log_weights
from gbi_npe.objective import ContinuousBetaNLL, GridValidationNLL, WeightedNLL
from gbi_npe.objective import call_log_weights_fn as call_fn

SMALL = SplineFlowConfig(num_layers=2, hidden_features=16, num_blocks=1, num_bins=4)


def test_normalization_per_beta():
    rng = np.random.default_rng(0)
    beta = np.repeat([0.5, 1.0, 2.0], [10, 20, 30])
    log_w = rng.normal(size=60) * 3
    w = np.exp(normalize_log_weights(log_w, beta, 60))
    assert w.sum() == pytest.approx(1.0)
    for value, count in ((0.5, 10), (1.0, 20), (2.0, 30)):
        assert w[beta == value].sum() == pytest.approx(count / 60)
        group = np.exp(log_w[beta == value])
        np.testing.assert_allclose(w[beta == value], count / 60 * group / group.sum())
    np.testing.assert_allclose(np.exp(normalize_log_weights(None, beta, 60)), 1 / 60)


def test_normalization_of_empty_groups():
    beta = np.array([1.0, 1.0, 2.0, 2.0])
    log_w = np.array([0.0, 1.0, -np.inf, -np.inf])
    with pytest.raises(ValueError, match=r"all weights are zero at beta = \[2.0\]"):
        normalize_log_weights(log_w, beta, 4)
    w = np.exp(normalize_log_weights(log_w, beta, 4, drop_empty=True))
    assert w.sum() == pytest.approx(1.0) and (w[2:] == 0).all()


@pytest.fixture
def weighted_setup(make_ready):
    """A perturbed NPE and N = 48 rows at three betas with skewed weights."""
    estimator = make_ready(SMALL, 2)
    rng = np.random.default_rng(5)
    n = 48
    theta = rng.uniform(estimator.spec.low, estimator.spec.high, (n, 2))
    beta = np.repeat([0.2, 1.0, 1.8], 16)
    context = np.c_[rng.normal(size=(n, 3)), beta]
    log_w = rng.normal(size=n) * 2.0
    return estimator, theta, context, beta, log_w


def test_minibatch_loss_is_unbiased_prop_b2(weighted_setup):
    # Prop. B.2: with globally normalized weights, (N/b) sum_B w~ l averages to
    # sum_i w~_i l_i over the batches of an epoch (a partition of the rows), so
    # its expectation over a uniformly drawn batch is the full objective.
    estimator, theta, context, beta, log_w = weighted_setup
    n = theta.shape[0]
    lw = normalize_log_weights(log_w, beta, n)
    objective = WeightedNLL(estimator, torch.as_tensor(theta), torch.as_tensor(context), lw)
    full = objective.full_loss()
    order = np.random.default_rng(0).permutation(n)
    with torch.no_grad():
        for b in (1, 8, 16):
            batches = [objective.batch_loss(order[i : i + b]).item() for i in range(0, n, b)]
            # (equal up to float32 rounding inside the network)
            assert np.mean(batches) == pytest.approx(full, rel=1e-6)
        # Unequal batches (the last one short): weight by batch share.
        b = 20
        parts = [order[i : i + b] for i in range(0, n, b)]
        total = sum(objective.batch_loss(p).item() * p.size / n for p in parts)
        assert total == pytest.approx(full, rel=1e-6)

        # Locally renormalized weights (w / sum over the batch) are biased:
        # with b = 1 they give the unweighted mean instead.
        nll = -estimator.log_prob(torch.as_tensor(theta), torch.as_tensor(context)).numpy()
        w = np.exp(lw)
        local_b1 = np.mean([nll[i] for i in range(n)])
        assert abs(local_b1 - full) > 1e-3
        assert full == pytest.approx(float(w @ nll), rel=1e-6)


def test_minibatch_loss_formula():
    nll = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    weights = torch.tensor([0.1, 0.0, 0.05], dtype=torch.float64)
    assert minibatch_loss(nll, weights, 30).item() == pytest.approx(30 / 3 * (0.1 + 0.2))


def test_continuous_beta_loss_is_unbiased(weighted_setup):
    # E_{batch, beta}[(N/b) sum_j w~(beta_j, i_j) l_j(beta_j)]
    #   = E_beta[sum_i w~_{beta,i} l_i(beta)], checked by Monte Carlo over
    # batches with a known weight table on a three-point beta grid.
    estimator, theta, context, _, _ = weighted_setup
    n = theta.shape[0]
    x = context[:, :3]
    grid = GridBeta((0.3, 1.0, 1.7))
    table = np.random.default_rng(1).normal(size=(3, n)) * 1.5
    table -= np.log(np.exp(table).sum(axis=1, keepdims=True))  # normalized per beta
    calls = []

    def log_weights_fn(beta: np.ndarray, index: np.ndarray) -> np.ndarray:
        calls.append((beta.dtype, index.dtype, beta.shape, index.shape))
        rows = np.searchsorted(np.asarray(grid.values), beta)
        return table[rows, index]

    theta_t, x_t = torch.as_tensor(theta), torch.as_tensor(x)
    objective = ContinuousBetaNLL(estimator, theta_t, x_t, np.arange(n), grid, log_weights_fn)
    with torch.no_grad():
        exact = 0.0
        for g, beta in enumerate(grid.values):
            ctx = torch.cat([x_t, torch.full((n, 1), beta, dtype=torch.float64)], 1)
            nll = -estimator.log_prob(theta_t, ctx).numpy()
            exact += np.exp(table[g]) @ nll / 3
        rng = np.random.default_rng(2)
        draws = np.array(
            [objective.batch_loss(rng.choice(n, 8, replace=False), rng).item() for _ in range(800)]
        )
    standard_error = draws.std() / np.sqrt(draws.size)
    assert abs(draws.mean() - exact) < 4 * standard_error
    assert calls[0][0] == np.float64 and np.issubdtype(calls[0][1], np.integer)
    assert calls[0][2] == calls[0][3] == (8,)


def test_grid_validation_renormalizes_over_the_validation_pairs(weighted_setup):
    estimator, theta, context, _, _ = weighted_setup
    n = theta.shape[0]
    x = context[:, :3]
    grid = np.array([0.5, 1.5])
    log_w = np.random.default_rng(3).normal(size=(2, n))  # not normalized
    validation = GridValidationNLL(
        estimator, torch.as_tensor(theta), torch.as_tensor(x), grid, log_w
    )
    terms, ess = [], []
    with torch.no_grad():
        for g, beta in enumerate(grid):
            ctx = torch.as_tensor(np.c_[x, np.full(n, beta)])
            nll = -estimator.log_prob(torch.as_tensor(theta), ctx).numpy()
            w = np.exp(log_w[g]) / np.exp(log_w[g]).sum()
            terms.append(w @ nll)
            ess.append(1.0 / np.sum(w**2))
    # each temperature counts in proportion to its validation ESS (inverse variance)
    expected = np.dot(ess, terms) / np.sum(ess)
    assert validation() == pytest.approx(expected, rel=1e-10)
    np.testing.assert_allclose(validation.ess, ess, rtol=1e-12)
    # the per-temperature parts of the latest call are kept for the History
    np.testing.assert_allclose(validation.last_losses, terms, rtol=1e-10)


def test_grid_validation_lets_a_collapsed_temperature_count_little(weighted_setup):
    """One pair holding all the weight at one beta: that beta's term barely counts."""
    estimator, theta, context, _, _ = weighted_setup
    n = theta.shape[0]
    x = context[:, :3]
    log_w = np.zeros((2, n))
    log_w[0, 1:] = -np.inf  # beta = 0.5: ESS 1
    validation = GridValidationNLL(
        estimator, torch.as_tensor(theta), torch.as_tensor(x), np.array([0.5, 1.5]), log_w
    )
    np.testing.assert_allclose(validation.ess, [1.0, n])
    np.testing.assert_allclose(validation.share, [1.0 / (n + 1), n / (n + 1.0)])
    # equal weights: the plain mean over the grid
    equal = GridValidationNLL(
        estimator, torch.as_tensor(theta), torch.as_tensor(x), np.array([0.5, 1.5]), None
    )
    np.testing.assert_allclose(equal.share, [0.5, 0.5])


def test_log_weights_fn_output_is_checked():
    beta, index = np.ones(4), np.arange(4)
    with pytest.raises(ValueError, match=r"must return an array of shape \(4,\)"):
        call_fn(lambda b, i: np.zeros(3), beta, index)
    with pytest.raises(ValueError, match="NaN or \\+inf"):
        call_fn(lambda b, i: np.full(4, np.nan), beta, index)
    np.testing.assert_array_equal(call_fn(lambda b, i: np.full(4, -np.inf), beta, index), -np.inf)
    with pytest.raises(ValueError, match="normalized over the whole base set"):
        call_fn(lambda b, i: np.full(4, 0.5), beta, index)


def _nre_form_weights(scores: np.ndarray):
    """``log w~(beta, i) = (beta - 1) r_i``, normalized over all pairs for each beta."""

    def log_weights_fn(beta: np.ndarray, index: np.ndarray) -> np.ndarray:
        table = (beta[:, None] - 1.0) * scores[None, :]
        top = table.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(table - top).sum(axis=1))
        return (beta - 1.0) * scores[index] - log_norm

    return log_weights_fn


def test_weighted_pair_sampling_is_unbiased_and_less_noisy(weighted_setup):
    # Both ways of picking pairs estimate (N / N_train) E_beta[sum_{i in train}
    # w~_{beta,i} l_i(beta)], here computed by Gauss-Legendre quadrature over
    # log beta (beta log-uniform on [0.3, 1.7]; weights as uneven as lorenz96's
    # at small beta: a handful of the 48 pairs carry the ends). Drawing pairs by
    # weight removes the weights' share of the spread (measured: standard
    # deviation 0.78 against 1.84 over 1500 batches; each estimate is within
    # a few percent, so 0.6 leaves a wide margin).
    from gbi_npe import LogUniformBeta

    estimator, theta, context, _, _ = weighted_setup
    n = theta.shape[0]
    x_t, theta_t = torch.as_tensor(context[:, :3]), torch.as_tensor(theta)
    scores = np.random.default_rng(7).normal(size=n) * 3.5
    fn = _nre_form_weights(scores)
    train = np.random.default_rng(8).permutation(n)[:40]
    dist = LogUniformBeta(0.3, 1.7)
    nodes, node_weights = np.polynomial.legendre.leggauss(24)
    lo, hi = np.log(0.3), np.log(1.7)
    exact = 0.0
    with torch.no_grad():
        for node, weight in zip(nodes, node_weights, strict=True):
            beta = float(np.exp(lo + (node + 1) * (hi - lo) / 2))
            ctx = torch.cat([x_t, torch.full((n, 1), beta, dtype=torch.float64)], 1)
            nll = -estimator.log_prob(theta_t, ctx).numpy()
            w = np.exp(fn(np.full(n, beta), np.arange(n)))
            exact += weight / 2 * (w[train] @ nll[train]) * n / train.size
        spread = {}
        for sampling in ("uniform", "weights"):
            objective = ContinuousBetaNLL(estimator, theta_t, x_t, train, dist, fn, sampling)
            rng = np.random.default_rng(9)
            draws = np.array(
                [
                    objective.batch_loss(rng.choice(40, 8, replace=False), rng).item()
                    for _ in range(1500)
                ]
            )
            standard_error = draws.std() / np.sqrt(draws.size)
            assert abs(draws.mean() - exact) < 4 * standard_error, sampling
            spread[sampling] = draws.std()
    assert spread["weights"] < 0.6 * spread["uniform"], spread


def test_weighted_pair_sampling_draws_pairs_by_weight(weighted_setup):
    # At a beta on the proposal table the pairs come up in proportion to
    # (1 - eps) w~ / W + eps / N_train: checked with a chi-square bound.
    from gbi_npe import GridBeta
    from gbi_npe.objective import DEFENSIVE

    estimator, theta, context, _, _ = weighted_setup
    n = theta.shape[0]
    scores = np.random.default_rng(10).normal(size=n)
    fn = _nre_form_weights(scores)
    objective = ContinuousBetaNLL(
        estimator,
        torch.as_tensor(theta),
        torch.as_tensor(context[:, :3]),
        np.arange(n),
        GridBeta((0.4,)),
        fn,
        "weights",
    )
    rng = np.random.default_rng(11)
    beta = np.full(20_000, 0.4)
    pos, log_nq = objective._draw_pairs(beta, rng)
    w = np.exp(fn(np.full(n, 0.4), np.arange(n)))
    q = (1 - DEFENSIVE) * w / w.sum() + DEFENSIVE / n
    np.testing.assert_allclose(np.exp(log_nq), n * q[pos], rtol=1e-9)
    counts = np.bincount(pos, minlength=n)
    chi2 = np.sum((counts - beta.size * q) ** 2 / (beta.size * q))
    # 47 degrees of freedom: the 0.999 quantile is about 82
    assert chi2 < 82, chi2


def test_pair_sampling_is_checked(weighted_setup):
    estimator, theta, context, _, _ = weighted_setup
    with pytest.raises(ValueError, match="pair_sampling"):
        ContinuousBetaNLL(
            estimator,
            torch.as_tensor(theta),
            torch.as_tensor(context[:, :3]),
            np.arange(4),
            GridBeta((1.0,)),
            None,
            "importance",
        )
