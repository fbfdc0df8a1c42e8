"""A virtual board: the firmware's serial protocol on a pseudo-terminal, for classrooms with
fewer boards than students and for CI.

``VirtualBoard.start()`` opens a pty and returns its device path (``/dev/pts/7``), which pyserial,
``tinyml-edu capture`` and ``monitor`` open exactly like a real board's ``/dev/ttyACM0``. A
daemon thread plays the "sensor": the windows of a shipped data set's test split back to back
(or a folder of recordings), paced in real time divided by ``speed``, and answers the commands of
``docs/serial-protocol.md``. Its camera (``sensor="camera"``, ``virtual_board.camera``) shows a
folder of pictures, one picture, a shipped image set or a built-in test card as binary camera
frames, 5 a second.

Like a board's flash, ``flash()`` stores ``model.tflite`` + ``deploy.json`` in a folder that
outlives the process (``~/.tinyml-edu/virtual-board/`` or ``$TINYML_EDU_VIRTUAL_FLASH``); a board
started with a model there boots with it, inference on, and prints ``P`` lines computed by the
TFLM runtime (tflite-micro) on the streamed windows (LiteRT where tflite-micro has no wheel).

Window numbering, for anyone checking predictions: inference starts at boot, at stream sample
0; prediction ``k`` is computed on stream samples ``[k * stride, k * stride + window)`` (after
``INFER OFF`` + ``INFER ON`` the windows restart at the sample of that moment). The stream
restarts at its first sample on every boot (``start``, ``flash``, ``erase``).

A keyword model (deployed with listen settings: an audio classification model with keyword
classes) also runs the sketch's posterior smoother after every inference, every ``hop_ms`` of
those settings, and prints a ``K`` line per detection, timed in stream samples from boot. With
one recording file as ``source`` the board hears it once from boot (``reset()`` plays it again)
and ``source_ended`` says when it is over: ``tinyml-edu listen RUN --port virtual --source
RECORDING`` then gives the host's detections on that file.

A camera model (an ``images`` or ``cars`` run) sees the camera's frames one at a time, each
brought to the model's frame as the inference sketch does it (``tinyml_edu.camera_input``;
RGB pictures as an RGB565 camera delivers them): prediction ``k`` is on camera frame ``k``
from boot, and after ``START`` each frame is sent just before its ``P`` line. A counting model
(``cars``) prints the count as its label (``3_cars``) and a ``C`` line with where.

A model deployed without a sensor (``sensor none``, the ``sine`` project) runs the sketch's
hello-world sine demo instead: x steps through 0..2π in 100 steps, one every 20 ms (divided by
``speed``), and prediction ``k`` is ``P k y <model(x)> <ms>`` for x = 2π (k mod 100) / 100.

The board never drops frames on its own: when the host does not read, it waits (the sensor
clock pauses). Faults of the line are injected on purpose with ``inject``.

Bugs of the firmware are flashed with the model, ``flash(model, meta, bug="missing_op")``, and
make the board fail as a real board with that sketch would (``BUGS`` lists them: ``missing_op``,
``arena_too_small``, ``swapped_axes``, ``wrong_input_scale``, ``sample_rate``); the lines TFLM
itself prints on the real board (plain text, no checksum) come first, word for word.

The package: ``flash`` (the flash folder), ``streams`` (what each sensor plays; new sensors
register there), ``camera`` (the camera's pictures), ``model`` (the flashed model, run
through ``tinyml_edu.runtime``), ``firmware`` (boot state, faults, windows), ``bugs`` (the
firmware bugs), ``line`` (the pseudo-terminal) and ``board``.
"""

from tinyml_edu.features import sensor_of  # one definition, re-exported
from tinyml_edu.virtual_board.board import (
    MAX_CHUNKS_PER_TURN,
    OUTPUT_LIMIT,
    VirtualBoard,
    run_forever,
)
from tinyml_edu.virtual_board.bugs import BUGS
from tinyml_edu.virtual_board.errors import VirtualBoardError
from tinyml_edu.virtual_board.firmware import FAULTS, FIRMWARE_VERSION, MODES, BootState, Fault
from tinyml_edu.virtual_board.flash import (
    FLASH_ENV_VAR,
    META_FILE,
    MODEL_FILE,
    default_flash_dir,
    erase,
    flash,
    read_flash,
)
from tinyml_edu.virtual_board.line import NO_PTY_MESSAGE, has_pty
from tinyml_edu.virtual_board.model import ModelRunner, default_model_input
from tinyml_edu.virtual_board.streams import (
    AUDIO_FRAME_SAMPLES,
    AUDIO_STRIDE_S,
    DEFAULT_SOURCES,
    SENSOR_KINDS,
    SENSORS,
    SINE_PERIOD_S,
    SINE_STEPS,
    SensorKind,
    SensorStream,
    load_stream,
    register_sensor,
    sine_sweep,
)

__all__ = [
    "AUDIO_FRAME_SAMPLES", "AUDIO_STRIDE_S", "BUGS", "DEFAULT_SOURCES", "FAULTS",
    "FIRMWARE_VERSION", "FLASH_ENV_VAR", "MAX_CHUNKS_PER_TURN", "META_FILE", "MODEL_FILE",
    "MODES", "NO_PTY_MESSAGE", "OUTPUT_LIMIT", "SENSORS", "SENSOR_KINDS", "SINE_PERIOD_S",
    "SINE_STEPS", "BootState", "Fault", "ModelRunner", "SensorKind", "SensorStream",
    "VirtualBoard", "VirtualBoardError", "default_flash_dir", "default_model_input", "erase",
    "flash", "has_pty", "load_stream", "read_flash", "register_sensor", "run_forever",
    "sensor_of", "sine_sweep",
]
