"""The comparison notebook's summary and conclusion, checked on a hand-made table of three
methods over three seeds."""
from __future__ import annotations

import pytest

from snnkit.claims import Claim, decide
from snnkit.notebook.comparison import Summary, conclusion, format_cost, paper_claims, summarize


def _row(acc: float, compute: float, memory: float, bits: float, T: int, bw: int = 32) -> dict:
    return {"accuracy": acc, "compression": 1.0 if bw == 32 and compute == 0.3 else 5.0, "T": T,
            "spikes_per_inference": 1000.0, "energy_compute_uj": compute, "energy_memory_uj": memory,
            "size_bits": bits, "weight_bits": bw, "storage_format": "dense"}


ROWS = {
    "dense": [_row(a, 0.3, 30.0, 1.6e6, 6) for a in (0.90, 0.92, 0.94)],
    "a": [_row(a, 0.1, 10.0, 8e4, 5) for a in (0.89, 0.91, 0.93)],  # 1 point below dense on every seed
    "b": [_row(a, 0.05, 3.0, 1.6e4, 4, bw=2) for a in (0.80, 0.82, 0.84)],  # 10 points below
}


@pytest.fixture()
def summary() -> Summary:
    return summarize(ROWS)


def test_summary_means_intervals_and_pairs(summary):
    assert summary.names == ["dense", "a", "b"] and summary.seeds == 3
    assert summary.table["a"]["accuracy"] == pytest.approx(0.91)
    low, high = summary.spread["dense"]["accuracy"]  # mean 0.92, std 0.02, t(0.975, 2) = 4.3027
    assert low == pytest.approx(0.92 - 4.3027 * 0.02 / 3 ** 0.5, abs=1e-4) and high == pytest.approx(0.92 + 0.0497, abs=1e-4)
    diff = summary.accuracy_difference("a", "dense")
    assert diff.mean == pytest.approx(-1.0) and diff.low == pytest.approx(-1.0) and diff.n == 3
    assert summary.ratio("dense", "b", "energy_memory_uj").mean == pytest.approx(10.0)
    assert summary.floor(2.0) == pytest.approx(0.90)
    assert summary.winners(0.90, ["a", "b"])["energy_compute_uj"] == "a"
    assert summary.winners(0.95, ["a", "b"])["T"] is None
    assert summary.fronts(["a", "b"])["size_bits"] == ["b", "a"]


def test_frame_shows_rounded_numbers_with_units(summary):
    frame = summary.frame()
    assert list(frame.index) == ["dense", "a", "b"]
    assert frame.loc["a", "accuracy"] == "0.910" and frame.loc["b", "size [kB]"] == "2.0"
    assert frame.loc["dense", "accuracy 95% interval"] == "0.870-0.970"
    assert frame.loc["b", "weight bits"] == "2" and frame.loc["a", "compute energy [uJ]"] == "0.100"
    one = summarize({n: rows[:1] for n, rows in ROWS.items()}).frame()
    assert one.loc["a", "accuracy 95% interval"] == "one run, no interval"


def test_conclusion_text_on_a_hand_made_table(summary):
    text = conclusion(summary, 2.0, intro="On hand-made numbers").splitlines()
    assert text[0] == ("On hand-made numbers, from one common network (3 seeds; dense 0.920), allowing 2 accuracy "
                       "points below dense (floor 0.900):")
    assert text[2] == ("- **Most accurate** compressed network: `a` (0.910, 5.0x fewer weights; "
                       "-1.0 points (-1.0 to -1.0), 3 seeds against dense).")
    assert text[3] == ("- **Compute energy**: `a` wins within the budget (0.100 uJ against 0.300 uJ dense; accuracy "
                       "0.910, -1.0 points (-1.0 to -1.0), 3 seeds); `b` is cheaper still (0.050 uJ) but falls to "
                       "0.820. Pareto front: `b`, `a`.")
    assert text[5].startswith("- **Stored weights**: `a` wins within the budget (10.0 kB against 200.0 kB dense;")
    assert text[6].startswith("- **Latency**: `a` wins within the budget (T = 5 against T = 6 dense;")
    assert text[7] == ("- On the accelerator model every network spends at least 60x its 45 nm compute energy on "
                       "memory and arithmetic together. Its three cheapest are `b` (2 bits), `a` (32 bits); by "
                       "compute energy alone the three cheapest are `b`, `a`.")
    assert len(text) == 8  # no verdicts given: no claims paragraph
    strict = conclusion(summary, 0.5, intro="On hand-made numbers").splitlines()
    assert strict[3].startswith("- **Compute energy**: no compressed method stays within the budget; cheapest overall "
                                "`b` (0.050 uJ, accuracy 0.820)")


def test_conclusion_lists_the_claims_not_reproduced(summary):
    claim = Claim.not_worse("b_within_1", paper="9", text="b within 1 point of dense", a="b", b="dense", margin=1.0,
                            scale=100, unit="points")
    verdict = decide(claim, summary.by_seed["b"]["accuracy"], baseline=summary.by_seed["dense"]["accuracy"])
    text = conclusion(summary, 2.0, intro="Here", verdicts=[verdict]).splitlines()
    assert text[-2] == "Where the papers' claims did not carry over to this setting:"
    assert text[-1] == "- paper 9: b within 1 point of dense: -10.0 points (b 0.820, dense 0.920) (not reproduced)."


def test_errors_name_the_bad_value(summary):
    with pytest.raises(ValueError, match="same number"):
        summarize({"dense": ROWS["dense"], "a": ROWS["a"][:2]})
    with pytest.raises(ValueError, match="has no 'compression'"):
        summarize({"dense": [{"accuracy": 0.9}]})
    with pytest.raises(ValueError, match="cost='bits'"):
        format_cost(1.0, "bits")
    assert format_cost(16000, "size_bits") == "2.0 kB" and format_cost(5, "T") == "T = 5"


def _entry(acc_shift: float, *, spikes: float = 1000.0, memory: float = 30.0, T: int = 6) -> list[dict]:
    return [{**_row(a + acc_shift, 0.3, memory, 1.6e6, T), "spikes_per_inference": spikes} for a in (0.90, 0.92, 0.94)]


def test_paper_claims_decided_on_a_hand_made_comparison():
    rows = {"dense": _entry(0.0), "pca": _entry(-0.005), "random": _entry(-0.02), "attention": _entry(-0.03, spikes=1200),
            "duq": _entry(-0.002), "rescaw-svs": _entry(-0.05), "lamp-kl": _entry(-0.004, memory=10.0, T=4),
            "uniform": _entry(-0.001, memory=3.0)}
    evidence = paper_claims(summarize(rows), sparsity=0.8, bits=2, pca_threshold=0.99, svs_keep=0.5, timesteps=6,
                            test_size=1000)
    assert [c.paper[0] for c, *_ in evidence] == ["1", "1", "2", "2", "3", "3", "4", "5", "5"]
    outcomes = {c.key: decide(c, v, baseline=b, untestable=why).outcome for c, v, b, why in evidence}
    assert outcomes == {"pca_within_1": "reproduced", "pca_vs_random": "reproduced",
                        "attention_within_1": "not reproduced", "attention_fewer_spikes": "not reproduced",
                        "duq_within_1": "reproduced", "ternary_less_memory_energy": "reproduced",
                        "rescaw_svs_within_1": "not reproduced", "lamp_kl_within_1": "reproduced",
                        "kl_shortens_t": "reproduced"}
    kl = next(e for e in evidence if e[0].key == "kl_shortens_t")
    assert kl[1] == [2.0, 2.0, 2.0] and kl[2] is None  # 6 - 4 steps on every seed
    high = {n: [{**r, "accuracy": 0.995} for r in rs] for n, rs in rows.items()}
    why = paper_claims(summarize(high), sparsity=0.8, bits=2, pca_threshold=0.99, svs_keep=0.5, timesteps=6,
                       test_size=1000)[0][3]
    assert why == "dense at the data's ceiling: mean accuracy 0.995 >= 0.990"
