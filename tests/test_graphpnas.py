"""GraphPNAS: generator likelihood, validity, query accounting, determinism, resume, refusals."""
from __future__ import annotations

import math


import numpy as np
import pytest

torch = pytest.importorskip("torch")

from trainables import graphpnas, reporting  # noqa: E402
from trainables.spaces import get_space  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest

# A smoke-size search on the embedded NAS-Bench-Graph tables (no shared data needed).
SMOKE = dict(space="nbgraph", dataset="cora", seed=3, query_budget=23, n_random=8, query_batch=5, epochs=4,
             hidden=8, layers=2, mixture=3, n_samples=60, sample_chunk=32, max_sample_rounds=2)


def _gen(space: str, seed: int = 0, **kw):
    torch.manual_seed(seed)
    kw = {"hidden": 16, "layers": 3, "mixture": 4, **kw}
    return graphpnas.make_generator(get_space(space), **kw)




def _run(config: dict, restore_from: str | None = None) -> list[dict]:
    with reporting.plain_session(restore_from=restore_from) as s:
        graphpnas.train(config)
        return [r.metrics for r in s.reports]


# ------------------------------------------------------------------------ generator
@pytest.mark.parametrize("space,steps,modes", [
    ("nb201", [1, 2, 3, 4, 5, 6], {"op"}),
    ("nbgraph", [1, 2, 3, 4], {"op", "src"}),
    ("nb101", [1, 2, 3, 4, 5, 6], {"op", "edge", "alpha"}),
])
def test_generator_shapes(space, steps, modes):
    g = _gen(space)
    lay = g.layout
    assert lay.steps == steps
    archs, logp = g.sample(7, np.random.default_rng(0))
    assert len(archs) == 7 and logp.shape == (7,) and np.all(logp < 0)
    x = g.prepare(archs)
    S, N = 7 * len(steps), lay.n_nodes
    assert x["labels"].shape == (S, N) and x["adj"].shape == (S, N, N)
    out = g.step_outputs(x)
    assert set(out) == modes
    assert out["op"].shape == (S, lay.n_ops)
    if "src" in out:
        assert out["src"].shape == (S, N)
    if "edge" in out:
        assert out["edge"].shape == (S, N, 4) and out["alpha"].shape == (S, 4)
    table = g.step_log_prob_table(archs)
    assert table.shape == (7, len(steps))


@pytest.mark.parametrize("space", ["nb201", "nbgraph", "nb101"])
def test_log_prob_is_the_sum_of_step_log_probs_and_matches_sampling(space):
    g = _gen(space, seed=1)
    archs, logp = g.sample(40, np.random.default_rng(1))
    with torch.no_grad():
        lp = g.log_prob(archs).double().numpy()
        steps = g.step_log_prob_table(archs).double().numpy()
    np.testing.assert_allclose(lp, steps.sum(1), atol=1e-4)
    np.testing.assert_allclose(lp, logp, atol=1e-4)  # teacher forcing == what the sampler drew with
    if space == "nb201":  # an untrained op head is near uniform over 5 ops at each of 6 nodes
        assert abs(lp.mean() + 6 * math.log(5)) < 1.0


def test_nb201_log_prob_of_a_known_cell_and_training_raises_it():
    sp = get_space("nb201")
    g = _gen("nb201", seed=2)
    cell = sp.from_string("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|")
    other = sp.from_string("|avg_pool_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|")
    with torch.no_grad():
        before = g.log_prob([cell, other]).numpy()
    x = g.prepare([cell])
    opt = torch.optim.Adam(g.parameters(), lr=1e-2)
    for _ in range(60):
        ll = g.log_likelihood(x)
        loss = -(ll["edge"] + 0.5 * ll["node"]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = g.log_prob([cell, other]).numpy()
    assert after[0] > before[0] + 3.0 and after[0] > -1.0   # close to probability 1
    assert after[1] < before[1]                              # mass moved away from the rest


@pytest.mark.parametrize("space", ["nb201", "nbgraph"])
def test_every_sample_is_valid_by_construction(space):
    sp = get_space(space)
    g = _gen(space, seed=4)
    if space == "nbgraph":  # push the op head hard towards 'skip': the all-skip mask must hold
        with torch.no_grad():
            g.op_head[-1].bias[sp.ops.index("skip")] += 30.0
    archs, _ = g.sample(500, np.random.default_rng(4))
    assert all(sp.is_valid(a) for a in archs)
    if space == "nbgraph":
        assert sum(a.ops[1:5] == ("skip",) * 4 for a in archs) == 0
        assert sum(a.ops[1:5].count("skip") == 3 for a in archs) > 400


def test_nb101_samples_are_well_formed_and_the_search_keeps_only_valid_new_cells():
    sp = get_space("nb101")
    g = _gen("nb101", seed=5)
    archs, _ = g.sample(300, np.random.default_rng(5))
    assert all(a.num_nodes == 7 and a.ops[0] == "input" and a.ops[-1] == "output" for a in archs)
    valid = [sp.is_valid(a) for a in archs]
    assert 0.2 < np.mean(valid) < 1.0  # some break NB101's rules: those are rejected
    # the rejection filter the search uses: only valid, never-queried, distinct cells pass
    search = graphpnas.GraphPNASRun.__new__(graphpnas.GraphPNASRun)
    search.space = sp
    search.keys = {sp.key(archs[valid.index(True)]): 0}
    search.counters = {"sampled": 0, "invalid": 0, "repeat": 0, "random_fill": 0}
    out: list = []
    search._new(archs, out, set(), 10_000)
    assert all(sp.is_valid(a) for a in out)
    keys = [sp.key(a) for a in out]
    assert len(set(keys)) == len(keys) and not set(keys) & set(search.keys)
    assert search.counters["invalid"] == len(archs) - sum(valid)
    assert search.counters["invalid"] + search.counters["repeat"] + len(out) == len(archs)


def test_reward_weights():
    lab = np.array([90.0, 80.0, 70.0])
    np.testing.assert_allclose(graphpnas.reward_weights(lab, lab, "rank"), [1, 2 / 3, 1 / 3])
    allv = np.array([90.0, 80.0, 70.0, 60.0, np.nan])
    np.testing.assert_allclose(graphpnas.reward_weights(lab, allv, "cdf"), [1.0, 0.75, 0.5])
    np.testing.assert_allclose(graphpnas.reward_weights(lab, allv, "uniform"), [1, 1, 1])


# ------------------------------------------------------------------------ the search
@pytest.fixture(scope="module")
def smoke_reports():
    with reporting.plain_session() as s:
        graphpnas.train(SMOKE)
        yield [r.metrics for r in s.reports], [r.checkpoint for r in s.reports]


def test_query_accounting_never_exceeds_budget_and_charges_each_cell_once(smoke_reports):
    reports, ckpts = smoke_reports
    q = [r["queries"] for r in reports]
    # 8 random (5 + 3), then batches of 5 up to the odd budget of 23 (the last one's figures in
    # the final report)
    assert q == [5, 8, 13, 18, 23]
    assert all(b - a <= SMOKE["query_batch"] for a, b in zip(q, q[1:]))
    trace = graphpnas.read_trace(ckpts[-1])
    sp = get_space("nbgraph")
    keys = [sp.key(a) for a in trace.archs]
    assert len(trace.archs) == len(set(keys)) == 23   # every query a distinct cell, none re-charged
    final = reports[-1]
    assert final["done"] and final["validity"] == 1.0 and 0 <= final["novelty"] <= 1
    assert final["gen/invalid"] == 0  # valid by construction on NAS-Bench-Graph
    for k in ("uniqueness", "top5_pct", "acc_mean", "loss/edge_nll", "loss/node_nll", "best_found_acc"):
        assert np.isfinite(final[k])
    # best found is the best label so far, and the curve never goes down
    best = [r["best_found_reward"] for r in reports]
    assert np.all(np.diff(best) >= 0) and best[-1] == np.nanmax(trace.rewards)


def test_repeats_are_not_double_charged():
    from trainables import common

    trial = common.open_trial({**SMOKE, "query_budget": 10})
    search = graphpnas.GraphPNASRun(graphpnas.GraphPNASRun.parse(SMOKE), trial)
    batch = search.random_batch(6)
    search.query(batch)
    assert trial.oracle.queries == 6
    again = search.random_batch(4)   # new cells only: the 6 queried keys are rejected
    assert not {search.space.key(a) for a in again} & {search.space.key(a) for a in batch}
    search.query(again)
    assert trial.oracle.queries == 10 == len(search.labels)
    trial.oracle.query(batch + again)   # asking again is free, and within budget
    assert trial.oracle.queries == 10


def test_all_options_run_and_report_losses():
    cfg = {**SMOKE, "query_budget": 18, "warm_start": False, "reward": "cdf", "baseline_decay": 0.5,
           "entropy_weight": 0.1, "temperature": 1.5, "final_train": False}
    reports = _run(cfg)
    assert reports[-1]["queries"] == 18 and "reward_baseline" in reports[-2]
    assert all(np.isfinite(reports[-1][k]) for k in ("loss/total", "loss/entropy"))


def test_nb201_search_uses_the_label_field_and_reports_the_eval_field(shared_data):
    cfg = dict(space="nb201", data_dir=str(shared_data), dataset="cifar10", label_field="cifar10-valid/valid/12",
               seed=0, query_budget=20, n_random=10, query_batch=10, epochs=3, hidden=8, layers=2,
               n_samples=50, sample_chunk=32, max_sample_rounds=2)
    with reporting.plain_session() as s:
        graphpnas.train(cfg)
        trace = graphpnas.read_trace(s.last_checkpoint)
        final = s.reports[-1].metrics
    from trainables.oracle import open_benchmark
    from trainables.spaces import load_table

    table = load_table("nb201", shared_data)
    assert final["label_field"] == "cifar10-valid/valid/12" and final["eval_field"] == "cifar10/test/200"
    _, ev = open_benchmark(table, "cifar10-valid/valid/12", "cifar10/test/200")
    np.testing.assert_allclose(trace.rewards, ev.values(trace.archs, "cifar10-valid/valid/12"))
    assert final["best_found_acc"] == pytest.approx(trace.curve(ev, [20])[0])
    assert final["validity"] == 1.0 and final["queries"] == 20


def test_nb101_sample_table_is_refused_before_launch(shared_data):
    config = {"space": "nb101", "data_dir": str(shared_data), "query_budget": 20}
    for call in (graphpnas.validate_config, graphpnas.train):  # preflight refuses it, not a trial
        with pytest.raises(ValueError, match="too small for search"):
            call(config)


@pytest.mark.parametrize("bad,match", [
    ({"elite_sise": 3}, "unknown config key 'elite_sise'; did you mean 'elite_size'"),
    ({"reward": "acc"}, "reward must be one of"),
    ({"query_budget": 0}, "query_budget >= 1"),
    ({"hidden": 2.5}, "hidden must be a whole number"),
    ({"query_batch": 0}, "query_batch must be >= 1"),
    ({"baseline_decay": 1.0}, "baseline_decay"),
    ({"explore": 1.0}, "explore must be in"),
    ({"explore": -0.1}, "explore must be in"),
    ({"likely_share": 1.5}, "likely_share must be in"),
])
def test_validate_config_rejects(bad, match):
    with pytest.raises(ValueError, match=match):
        graphpnas.validate_config({**SMOKE, **bad})


# ------------------------------------------------------------------------ exploration (issue 30)
def _collapsed_nb201(seed: int = 5):
    """A tiny NB201 generator trained until almost every draw is one cell."""
    sp = get_space("nb201")
    cell = sp.from_string("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|")
    g = _gen("nb201", seed=seed, hidden=8, layers=2, mixture=2)
    x = g.prepare([cell])
    opt = torch.optim.Adam(g.parameters(), lr=5e-2)
    for _ in range(80):
        loss = -g.log_likelihood(x)["node"].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return sp, g, sp.encode(cell)


def test_explore_keeps_every_op_in_reach_of_a_collapsed_generator_and_logp_stays_the_models():
    sp, g, mode = _collapsed_nb201()
    plain, _ = g.sample(2000, np.random.default_rng(0))
    plain_g = np.array([sp.encode(a) for a in plain])
    assert (plain_g == mode).all(axis=1).mean() > 0.95   # collapsed: the elite cell again and again
    eps = 0.3
    archs, logp = g.sample(2000, np.random.default_rng(0), explore=eps)
    geno = np.array([sp.encode(a) for a in archs])
    for j in range(6):  # each position leaves the mode with probability ≈ ε · 4/5, to every op
        off = geno[:, j] != mode[j]
        assert abs(off.mean() - eps * 4 / 5) < 0.05
        assert set(geno[:, j].tolist()) == set(range(len(sp.ops)))
    assert len({sp.key(a) for a in archs}) > 100          # new cells, not the elite's copies
    with torch.no_grad():                                 # the reported log-probs are the model's own
        np.testing.assert_allclose(g.log_prob(archs).double().numpy(), logp, atol=1e-3)


@pytest.mark.parametrize("space", ["nbgraph", "nb101"])
def test_explore_keeps_masked_choices_masked(space):
    sp = get_space(space)
    g = _gen(space, seed=6)
    archs, _ = g.sample(400, np.random.default_rng(6), explore=0.5)
    if space == "nbgraph":  # sources stay on the benchmark's link patterns, all-skip stays out
        assert all(sp.is_valid(a) for a in archs)
        assert not any(a.ops[1:5] == ("skip",) * 4 for a in archs)
    else:  # Bernoulli edges only from earlier nodes (a DAG in node order)
        assert all(s < d for a in archs for s, d in a.edges)


def test_explore_zero_draws_exactly_as_before():
    g = _gen("nb201", seed=7)
    a, la = g.sample(50, np.random.default_rng(3))
    b, lb = g.sample(50, np.random.default_rng(3), explore=0.0)
    assert a == b and np.array_equal(la, lb)


@pytest.mark.parametrize("share", [1.0, 0.5])
def test_likely_share_queries_the_most_probable_new_cells_of_the_draws(share):
    """The batch opens with the round(share · n) most probable (model log-probability) new
    cells among the chunk of draws; the rest follow in draw order; nothing already queried."""
    from trainables import common

    cfg = {**SMOKE, "likely_share": share, "sample_chunk": 64}
    trial = common.open_trial({**cfg, "query_budget": 40})
    search = graphpnas.GraphPNASRun(graphpnas.GraphPNASRun.parse(cfg), trial)
    search.query(search.random_batch(8))
    search.fit()
    state = trial.rng.bit_generator.state
    batch = search.generator_batch(6)
    trial.rng.bit_generator.state = state  # the same chunk again, to see what was on offer
    drawn, logp = search.model.sample(64, trial.rng, 1.0)
    new, new_lp = {}, {}
    for a, lp in zip(drawn, logp):
        k = search.space.key(a)
        if search.space.is_valid(a) and k not in search.keys and k not in new:
            new[k], new_lp[k] = a, float(lp)
    assert len(new) > 6  # a real choice
    keys = [search.space.key(a) for a in batch]
    assert len(set(keys)) == 6 and not set(keys) & set(search.keys)
    n_likely = round(share * 6)
    ranked = sorted(new, key=lambda k: -new_lp[k])
    assert keys[:n_likely] == ranked[:n_likely]
    rest = [k for k in new if k not in set(ranked[:n_likely])]
    assert keys[n_likely:] == rest[: 6 - n_likely]
