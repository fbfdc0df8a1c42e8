"""Training's progress bar ends as a success, and says so when early stopping ends it."""

import io

import numpy as np
import pytest
import tqdm.auto
import tqdm.std

from tinyml_edu import train


def test_end_message_explains_early_stopping():
    watched = [1.0, 0.5, 0.4] + [0.6] * 40  # best at epoch 3, then 40 epochs without progress
    message = train.end_of_training_message(watched, 300, "val_loss", patience=40)
    assert message.startswith("stopped early after 43 of 300 epochs")
    assert "val_loss had not improved for 40 epochs" in message
    assert "kept the best epoch, 3" in message


def test_end_message_of_a_full_run_and_of_a_higher_is_better_metric():
    assert train.end_of_training_message([0.5, 0.9, 0.8], 3, "val_accuracy", 20) == \
        "done: 3 epochs; kept the best epoch, 2"
    assert "a callback asked" in train.end_of_training_message([1.0, 0.9], 10, "val_loss", 5)


def _terminal_bar(bars):
    class RecordedBar(tqdm.std.tqdm):  # the terminal bar, written to a string
        def __init__(self, *args, **kwargs):
            kwargs.update(disable=False, file=io.StringIO())
            super().__init__(*args, **kwargs)
            bars.append(self)

    return RecordedBar


def _notebook_bar(bars):
    import tqdm.notebook

    class RecordedBar(tqdm.notebook.tqdm):  # Jupyter's widget bar
        def __init__(self, *args, **kwargs):
            kwargs.update(disable=False)
            super().__init__(*args, **kwargs)
            bars.append(self)

    return RecordedBar


@pytest.mark.slow
@pytest.mark.parametrize("make_bar", [_terminal_bar, _notebook_bar])
def test_the_bar_ends_full_when_early_stopping_ends_training(monkeypatch, make_bar):
    bars = []
    monkeypatch.setattr(tqdm.auto, "tqdm", make_bar(bars))
    from tinyml_edu import models

    train.set_seed(0)
    model = models.mlp(1, (4,), 1)
    x = np.linspace(0, 1, 64, dtype=np.float32)[:, None]
    # a validation target the model cannot fit: no improvement after the first epochs
    result = train.fit(model, x, x, x, np.zeros_like(x) + 5.0, loss="mse", epochs=200,
                       patience=3, learning_rate=0.0)
    assert result.epochs_run < 200
    bar = bars[-1]
    assert bar.n == bar.total == result.epochs_run  # a full bar, not a red 2 % one
    assert "stopped early" in bar.postfix and "not improved for 3 epochs" in bar.postfix
    if hasattr(bar, "container"):  # Jupyter: a full green bar, not a red one
        widget = bar.container.children[1]
        assert widget.value == widget.max == result.epochs_run
        assert widget.bar_style == "success"
