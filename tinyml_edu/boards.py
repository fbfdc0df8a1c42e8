"""Facts about the kit boards a class uses, and the `virtual` board that stands in for them.

Figures are from the boards' datasheets. ``runtime_flash_bytes`` and ``runtime_ram_bytes`` are
our estimates of what the Arduino core, the serial/sensor code and the TFLM runtime itself take, so
that "fits" leaves room for the rest of the sketch; ``cycles_per_mac`` is the assumption behind
latency estimates (optimised int8 kernels: CMSIS-NN on Cortex-M, ESP-NN on the ESP32-S3).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tinyml_edu.errors import UnknownNameError


@dataclass(frozen=True)
class Board:
    id: str
    name: str
    mcu: str
    cpu: str
    clock_hz: int
    ram_bytes: int
    flash_bytes: int
    sensors: tuple[str, ...]
    fqbn: str  # arduino-cli "fully qualified board name"; "" where there is none
    arduino_core: str  # what `arduino-cli core install` needs
    runtime_flash_bytes: int
    runtime_ram_bytes: int
    cycles_per_mac: float
    notes: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


KB = 1024

BOARDS: dict[str, Board] = {b.id: b for b in (
    Board(
        id="nano33ble_sense_rev1",
        name="Arduino Nano 33 BLE Sense (Rev1)",
        mcu="Nordic nRF52840",
        cpu="Arm Cortex-M4F",
        clock_hz=64_000_000,
        ram_bytes=256 * KB,
        flash_bytes=1024 * KB,
        sensors=("LSM9DS1 IMU (accel, gyro, mag)", "MP34DT05 PDM microphone",
                 "APDS9960 light/gesture/proximity", "HTS221 humidity/temperature",
                 "LPS22HB pressure"),
        fqbn="arduino:mbed_nano:nano33ble",
        arduino_core="arduino:mbed_nano",
        runtime_flash_bytes=180 * KB,
        runtime_ram_bytes=64 * KB,
        cycles_per_mac=2.0,
        notes="The tinyMLx kit board. IMU at 119 Hz; our firmware streams ~100 Hz.",
    ),
    Board(
        id="nano33ble_sense_rev2",
        name="Arduino Nano 33 BLE Sense Rev2",
        mcu="Nordic nRF52840",
        cpu="Arm Cortex-M4F",
        clock_hz=64_000_000,
        ram_bytes=256 * KB,
        flash_bytes=1024 * KB,
        sensors=("BMI270 IMU (accel, gyro)", "BMM150 magnetometer", "MP34DT06JTR PDM microphone",
                 "APDS9960 light/gesture/proximity", "HS3003 humidity/temperature",
                 "LPS22HB pressure"),
        fqbn="arduino:mbed_nano:nano33ble",
        arduino_core="arduino:mbed_nano",
        runtime_flash_bytes=180 * KB,
        runtime_ram_bytes=64 * KB,
        cycles_per_mac=2.0,
        notes="Rev2 swapped the LSM9DS1 for BMI270 + BMM150: Rev1 IMU code does not run on it.",
    ),
    Board(
        id="xiao_esp32s3_sense",
        name="Seeed Studio XIAO ESP32S3 Sense",
        mcu="Espressif ESP32-S3",
        cpu="dual-core Xtensa LX7",
        clock_hz=240_000_000,
        ram_bytes=512 * KB,  # on-chip SRAM; the 8 MB PSRAM is slower and not counted
        flash_bytes=8 * 1024 * KB,
        sensors=("OV2640 camera", "digital PDM microphone", "microSD slot"),
        fqbn="esp32:esp32:XIAO_ESP32S3",
        arduino_core="esp32:esp32",
        runtime_flash_bytes=400 * KB,
        runtime_ram_bytes=160 * KB,
        cycles_per_mac=1.0,
        notes="No IMU on board: gesture lessons need an external one (e.g. MPU6050) or the "
              "virtual board. 8 MB PSRAM available for large buffers.",
    ),
    Board(
        id="pico",
        name="Raspberry Pi Pico",
        mcu="Raspberry Pi RP2040",
        cpu="dual-core Arm Cortex-M0+",
        clock_hz=133_000_000,
        ram_bytes=264 * KB,
        flash_bytes=2048 * KB,
        sensors=("internal temperature sensor",),
        fqbn="rp2040:rp2040:rpipico",
        arduino_core="rp2040:rp2040",
        runtime_flash_bytes=150 * KB,
        runtime_ram_bytes=48 * KB,
        cycles_per_mac=8.0,  # no DSP/SIMD instructions on the M0+
        notes="No sensors for the lessons on board; needs external sensors or the virtual board.",
    ),
    Board(
        id="virtual",
        name="Virtual board (this computer)",
        mcu="host CPU",
        cpu="host CPU running the TFLM reference kernels",
        clock_hz=0,
        ram_bytes=256 * KB,  # behaves like a Nano 33 BLE Sense so "fits" means the same thing
        flash_bytes=1024 * KB,
        sensors=("streams IMU or audio from a data set or a recorded folder",),
        fqbn="",
        arduino_core="",
        runtime_flash_bytes=180 * KB,
        runtime_ram_bytes=64 * KB,
        cycles_per_mac=0.0,  # latency is measured, not estimated
        notes="For classrooms with fewer boards than students, and for CI.",
    ),
)}


def get_board(board_id: str) -> Board:
    """Look a board up by id; an unknown id lists the known ones."""
    try:
        return BOARDS[board_id]
    except KeyError:
        raise UnknownNameError(f"unknown board {board_id!r}; known boards: "
                               f"{', '.join(BOARDS)}") from None
