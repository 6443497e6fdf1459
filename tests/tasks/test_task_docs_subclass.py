"""docs/tasks.md's subclassing example runs as written (trains, saves, loads back)."""

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "tasks.md"


def _section(text: str, title: str) -> str:
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_subclassing_section_names_the_extension_points():
    section = _section(DOC.read_text(), "Subclassing a task")
    for name in ("shared_step", "log_stage", "check_targets", "metric_inputs", "loss"):
        assert f"`{name}" in section, name
    assert "_init_stage_metrics" in section and "_save_hparams" in section


def test_subclassing_example_runs():
    section = _section(DOC.read_text(), "Subclassing a task")
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1
    exec(compile(blocks[0], "docs/tasks.md subclassing example", "exec"), {"__name__": "doc"})
