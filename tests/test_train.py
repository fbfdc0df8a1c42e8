"""Training's progress bar ends as a success, and says so when early stopping ends it."""

import io
import re

import numpy as np
import pytest
import tqdm.auto
import tqdm.std

from tinyml_edu import train
from tinyml_edu.errors import InputError


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


@pytest.mark.parametrize(("settings", "says"), [
    ({"loss": ""}, "loss must name a Keras loss"),
    ({"loss": "mse", "metrics": "accuracy"}, "not the string 'accuracy'"),
    ({"loss": "mse", "epochs": 0}, "epochs must be a whole number >= 1"),
    ({"loss": "mse", "batch_size": 2.5}, "batch_size must be a whole number >= 1"),
    ({"loss": "mse", "patience": -1}, "patience must be a whole number"),
    ({"loss": "mse", "learning_rate": float("nan")}, "learning_rate must be a number >= 0"),
    ({"loss": "mse", "seed": -3}, "seed must be a whole number >= 0"),
    ({"loss": "mse", "lr_schedule": "step"}, "use 'constant' or 'cosine'"),
    ({"loss": "mse", "monitor": "val_accuracy"}, "metrics=('accuracy',)"),
])
def test_a_bad_training_setting_says_how_to_fix_it(settings, says):
    with pytest.raises(InputError, match=re.escape(says)):
        train.TrainConfig(**settings)


def test_the_config_stores_metrics_as_a_tuple_and_checks_the_monitor_against_them():
    config = train.TrainConfig("sparse_categorical_crossentropy", metrics=["accuracy"],
                               monitor="val_accuracy")
    assert config.metrics == ("accuracy",) and config.higher_is_better
    assert not train.TrainConfig("mse").higher_is_better


def test_fit_takes_a_config_or_keywords_and_keywords_override_the_config():
    base = train.TrainConfig("mse", epochs=5, seed=1)
    assert train._config(base, {"seed": 7}) == train.TrainConfig("mse", epochs=5, seed=7)
    assert train._config(None, {"loss": "mse", "epochs": 5, "seed": 1}) == base
    with pytest.raises(TypeError, match="unknown setting.*epoch;"):
        train._config(None, {"loss": "mse", "epoch": 5})
    with pytest.raises(TypeError, match="needs a loss"):
        train._config(None, {"epochs": 5})


def test_every_project_carries_a_training_config():
    from tinyml_edu.projects import PROJECTS

    for project in PROJECTS.values():
        assert isinstance(project.training, train.TrainConfig), project.name
    assert PROJECTS["sine"].training == train.TrainConfig(
        "mse", epochs=400, batch_size=32, learning_rate=0.01, patience=40)


@pytest.mark.slow
def test_the_keyword_form_and_the_config_form_train_the_same_model():
    from tinyml_edu import models

    x = np.linspace(0, 1, 64, dtype=np.float32)[:, None]
    results = []
    for kwargs in ({"loss": "mse", "epochs": 5, "seed": 2},
                   {"config": train.TrainConfig("mse", epochs=5, seed=2)}):
        train.set_seed(0)
        model = models.mlp(1, (4,), 1)
        results.append(train.fit(model, x, x, x, x, progress=False, **kwargs).history)
    assert results[0] == results[1] and len(results[0]["loss"]) == 5
