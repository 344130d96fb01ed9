"""The batch-1 profile's tables: step medians and their shares, operators by time (hand-computed)."""

from __future__ import annotations

from model.tools.profile_call import markdown


def test_steps_are_medians_with_shares_and_operators_sorted_by_time() -> None:
    steps = {"tokenise": [0.000010, 0.000030, 0.000020], "session.run": [0.000080, 0.000060, 0.000070]}
    table = markdown(steps, {"MatMulInteger": 30.0, "Softmax": 10.0, "Gelu": 60.0})
    lines = table.splitlines()
    assert "| tokenise | 20 | 22% |" in lines and "| session.run | 70 | 78% |" in lines
    assert "| **sum of the steps** | **90** | |" in lines
    ops = [line.split(" | ")[0] for line in lines if line.startswith("| ") and "%" in line][2:]
    assert ops == ["| Gelu", "| MatMulInteger", "| Softmax"]
    assert "| Gelu | 60 | 60% |" in lines and "| **all operators** | **100** | |" in lines
