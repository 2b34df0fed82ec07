"""Quick-look figures are real PNGs that show the data."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib import image  # noqa: E402

from xdeepbedmap.catalog import open_inputs, open_truth  # noqa: E402
from xdeepbedmap.cli import main  # noqa: E402
from xdeepbedmap.plot import plot_inputs  # noqa: E402


def test_plot_inputs_png(tmp_path):
    out = tmp_path / "inputs.png"
    fig = plot_inputs(open_inputs("demo"), open_truth("demo"), path=out)
    assert len(fig.axes) >= 5
    pixels = image.imread(out)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 1500
    # a picture, not a blank canvas: many distinct colours
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 1000


def test_cli_plot_inputs_and_bad_bbox(tmp_path, capsys):
    out = tmp_path / "q.png"
    assert main(["plot-inputs", "--output", str(out)]) == 0
    assert out.stat().st_size > 10_000
    assert main(["plot-inputs", "--bbox", "1,2,3", "--output", str(tmp_path / "x.png")]) == 1
    assert "--bbox must be" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
