"""Build a model's inference program for the Nano's Cortex-M4F, to run on QEMU's mps2-an386.

The program is what the board runs, minus the sensors: Chirale_TensorFlowLite (the TFLM the
sketch uses) with its CMSIS-NN kernels, the exported model array, an op resolver made the way
``deploy`` makes the sketch's, and the sketch's arena size. It is compiled with the core's own
C/C++ flags from the kit (``-mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=softfp -Os``,
``-funsigned-char``, ...), plus ``-DARDUINO`` (which selects the int8 kernel registrations).

For an audio model the program can also compute the model's input on the core from raw clips
(``audio_input=True``): the sketch's front end, ``tinyml_edu_dsp.c`` of the course's own
Arduino library compiled with the core's C flags, set up from ``model_settings.h`` by the same
``tinyml_edu_audio_input.h`` the sketch includes. An IMU model's program can likewise scale raw
IMU windows on the core (``imu_input=True``) with the sketch's ``tme_imu_input_sample``, set up
by ``tinyml_edu_imu_input.h``.

Only the library files the model needs are compiled: the TFLM framework, the kernels of the
model's ops and CMSIS-NN (archived, so the linker takes only what is called). Objects are
cached under ``~/.cache/tinyml-edu/m4/<hash of compiler version and flags>/`` and reused by
every later build, so only the first build is slow.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tinyml_edu import export
from tinyml_edu.errors import TinyMLEduError

KIT_ENV = "TINYML_EDU_ARDUINO_KIT"  # the same variable deploy reads
CACHE_ENV = "TINYML_EDU_M4_CACHE"
LIBRARY = "libraries/Chirale_TensorFlowLite/src"
VARIANT = "core/variants/ARDUINO_NANO33BLE"
HARNESS = Path(__file__).resolve().parent / "harness"
CROSS = "arm-none-eabi-"
ARDUINO_DEFINE = "-DARDUINO=10607"  # the value arduino-cli passes (IDE 1.6.7 API)

# TFLM framework sources (relative to the library's src/), always needed.
FRAMEWORK_DIRS = (
    "tensorflow/lite/micro/arena_allocator",
    "tensorflow/lite/micro/memory_planner",
    "tensorflow/lite/micro/tflite_bridge",
    "tensorflow/lite/core/api",
    "tensorflow/lite/core/c",
    "tensorflow/lite/kernels/internal",
    "tensorflow/lite/kernels",
    "tensorflow/lite/schema",
)
FRAMEWORK_FILES = tuple(f"tensorflow/lite/micro/{name}.cpp" for name in (
    "flatbuffer_utils", "memory_helpers", "micro_allocation_info", "micro_allocator",
    "micro_context", "micro_graph", "micro_interpreter", "micro_log", "micro_profiler",
    "micro_resource_variable", "micro_string", "micro_utils",
)) + tuple(f"tensorflow/lite/micro/kernels/{name}.cpp" for name in (
    "kernel_util", "micro_tensor_utils",
))
CMSIS_NN_DIR = "third_party/cmsis_nn/Source"
KERNELS_DIR = "tensorflow/lite/micro/kernels"

# TFLite op -> kernel file stem, where the stem is not simply the op name in lower case.
KERNEL_STEMS = {
    "CONV_2D": ["conv"], "DEPTHWISE_CONV_2D": ["depthwise_conv"],
    "AVERAGE_POOL_2D": ["pooling"], "MAX_POOL_2D": ["pooling"],
    "RELU": ["activations"], "RELU6": ["activations"], "MEAN": ["reduce"],
    "REDUCE_MAX": ["reduce"], "SUM": ["reduce"], "LOGISTIC": ["logistic"],
    "LEAKY_RELU": ["leaky_relu"], "HARD_SWISH": ["hard_swish"],
    "MAXIMUM": ["maximum_minimum"], "MINIMUM": ["maximum_minimum"],
    "ABS": ["elementwise"], "SQRT": ["elementwise"], "RSQRT": ["elementwise"],
    "SQUARE": ["elementwise"], "SIN": ["elementwise"], "COS": ["elementwise"],
    "LOG": ["elementwise"],
}

# Kernel files that use another kernel's shared code (depthwise conv: conv's tensor indices).
KERNEL_NEEDS = {"DEPTHWISE_CONV_2D": [f"{KERNELS_DIR}/conv_common.cpp"]}


class BuildError(TinyMLEduError):
    """The emulated board's program could not be built; the message says what to install."""


@dataclass
class Toolchain:
    gcc: str
    gxx: str
    ar: str
    nm: str
    host_cc: str
    version: str


@dataclass
class BuildResult:
    elf: Path
    mark_address: int
    objects_compiled: int  # cache misses this build
    objects_cached: int
    seconds: float
    ops: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    audio_input: bool = False  # the program computes the model input from raw int16 clips
    imu_input: bool = False  # ... from raw float32 IMU windows

    @property
    def computes_input(self) -> bool:
        """Does the program compute the model input itself (and write it to board_inputs.bin)?"""
        return self.audio_input or self.imu_input


def default_kit() -> Path:
    """``../shared/third_party/arduino-nano33ble`` beside the source checkout (tests, CI), or
    one level further up (a git worktree in a folder of worktrees)."""
    checkout = Path(__file__).resolve().parents[2]
    candidates = [up / "shared/third_party/arduino-nano33ble"
                  for up in (checkout.parent, checkout.parent.parent)]
    return next((c for c in candidates if c.is_dir()), candidates[0])


def find_kit(kit: Path | str | None = None) -> Path:
    """The kit from ``kit``, else ``$TINYML_EDU_ARDUINO_KIT``, else the default next to the
    checkout."""
    candidate = Path(kit or os.environ.get(KIT_ENV) or default_kit()).expanduser()
    if not (candidate / LIBRARY / "tensorflow/lite/micro/micro_interpreter.h").is_file():
        raise BuildError(
            f"no arduino-nano33ble kit with Chirale_TensorFlowLite at {candidate}; give its "
            f"folder with --kit or ${KIT_ENV} (the course's shared/third_party/arduino-nano33ble)")
    return candidate


def find_toolchain() -> Toolchain:
    tools = {name: shutil.which(CROSS + name) for name in ("gcc", "g++", "ar", "nm")}
    missing = [CROSS + name for name, path in tools.items() if not path]
    if missing:
        raise BuildError(f"{', '.join(missing)} not found (Debian/Ubuntu: apt install "
                         "gcc-arm-none-eabi libnewlib-arm-none-eabi)")
    host_cc = shutil.which("cc") or shutil.which("gcc")
    if not host_cc:
        raise BuildError("no C compiler for this computer (cc/gcc) to build the QEMU "
                         "instruction-counting plugin (Debian/Ubuntu: apt install gcc)")
    version = subprocess.run([tools["gcc"], "--version"], capture_output=True, text=True,
                             check=True).stdout.splitlines()[0]
    return Toolchain(tools["gcc"], tools["g++"], tools["ar"], tools["nm"], host_cc, version)


def core_flags(kit: Path, language: str) -> list[str]:
    """The Nano core's own compile flags (``cflags.txt`` / ``cxxflags.txt``), minus ``-c`` and
    warnings (third-party code; arduino-cli's default is ``-w`` too)."""
    name = "cxxflags.txt" if language == "c++" else "cflags.txt"
    flags = (kit / VARIANT / name).read_text(encoding="utf-8").split()
    kept = [f for f in flags if f != "-c" and not f.startswith("-W")]
    return kept + ["-w", ARDUINO_DEFINE]


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV)
                or Path.home() / ".cache" / "tinyml-edu" / "m4").expanduser()


def kernel_sources(library: Path, ops: Iterable[str]) -> list[str]:
    """The kernel files of ``ops``: the CMSIS-NN version where Chirale has one (it replaces the
    reference kernel), plus the shared ``*_common.cpp``."""
    found: set[str] = set()
    for op in ops:
        for stem in KERNEL_STEMS.get(op, [op.lower()]):
            optimised = f"{KERNELS_DIR}/cmsis_nn/{stem}.cpp"
            plain = f"{KERNELS_DIR}/{stem}.cpp"
            common = f"{KERNELS_DIR}/{stem}_common.cpp"
            chosen = [p for p in (optimised if (library / optimised).is_file() else plain, common)
                      if (library / p).is_file()]
            if not chosen:
                raise BuildError(f"no TFLM kernel source for op {op} in {library}")
            found.update(chosen)
        found.update(KERNEL_NEEDS.get(op, []))
    return sorted(found)


def framework_sources(library: Path) -> list[str]:
    files = list(FRAMEWORK_FILES)
    for folder in FRAMEWORK_DIRS:
        files += [str(p.relative_to(library)) for p in sorted((library / folder).glob("*.cpp"))]
    return files


def _compile_one(command: list[str], obj: Path) -> str | None:
    obj.parent.mkdir(parents=True, exist_ok=True)
    partial = obj.with_name(f".{obj.name}.{os.getpid()}.tmp")
    done = subprocess.run([*command, "-o", str(partial)], capture_output=True, text=True)
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        return f"{' '.join(command)}\n{done.stderr[-3000:]}"
    partial.replace(obj)  # atomic: a concurrent or interrupted build never sees half a file
    return None


class ObjectCache:
    """Compiled library objects keyed by compiler version and flags."""

    def __init__(self, toolchain: Toolchain, kit: Path, jobs: int = 2):
        self.toolchain, self.kit, self.jobs = toolchain, kit, max(1, jobs)
        self.library = kit / LIBRARY
        self.includes = [f"-I{self.library}"]
        self.cflags = core_flags(kit, "c")
        self.cxxflags = core_flags(kit, "c++")
        key = "\n".join([toolchain.version, *self.cflags, "--", *self.cxxflags, str(kit)])
        self.dir = cache_root() / hashlib.sha256(key.encode()).hexdigest()[:16]
        self.compiled = self.cached = 0

    def command(self, source: Path) -> list[str]:
        if source.suffix == ".c":
            return [self.toolchain.gcc, *self.cflags, *self.includes, "-c", str(source)]
        return [self.toolchain.gxx, *self.cxxflags, *self.includes, "-c", str(source)]

    def objects(self, relative_sources: Iterable[str]) -> list[Path]:
        """Objects for library sources, compiling (``jobs`` at a time) those not cached."""
        jobs, objects = [], []
        for rel in relative_sources:
            source = self.library / rel
            obj = self.dir / "obj" / (rel + ".o")
            objects.append(obj)
            if obj.is_file() and obj.stat().st_mtime >= source.stat().st_mtime:
                self.cached += 1
            else:
                jobs.append((self.command(source), obj))
        with ThreadPoolExecutor(self.jobs) as pool:
            errors = [e for e in pool.map(lambda job: _compile_one(*job), jobs) if e]
        self.compiled += len(jobs) - len(errors)
        if errors:
            raise BuildError(f"{len(errors)} library file(s) failed to compile for the "
                             f"Cortex-M4:\n{errors[0]}")
        return objects

    def cmsis_nn_archive(self) -> Path:
        """All of CMSIS-NN as one archive: the linker pulls in only the functions called."""
        archive = self.dir / "libcmsis_nn.a"
        sources = sorted(str(p.relative_to(self.library))
                         for p in (self.library / CMSIS_NN_DIR).rglob("*.c"))
        objects = self.objects(sources)
        newest = max(o.stat().st_mtime for o in objects)
        if not archive.is_file() or archive.stat().st_mtime < newest:
            partial = archive.with_name(f".libcmsis_nn.{os.getpid()}.a")
            partial.unlink(missing_ok=True)
            subprocess.run([self.toolchain.ar, "rcs", str(partial), *map(str, objects)],
                           check=True, capture_output=True)
            partial.replace(archive)
        return archive

    def plugin(self) -> Path:
        """The instruction-counting QEMU plugin, built for this computer."""
        plugin = cache_root() / "icount_plugin.so"
        source = HARNESS / "icount_plugin.c"
        if not plugin.is_file() or plugin.stat().st_mtime < source.stat().st_mtime:
            plugin.parent.mkdir(parents=True, exist_ok=True)
            error = _compile_one([self.toolchain.host_cc, "-shared", "-fPIC", "-O2",
                                  "-fvisibility=hidden", str(source)], plugin)
            if error:
                raise BuildError("the QEMU plugin failed to compile:\n" + error)
        return plugin


def ops_header(ops: list[str]) -> str:
    """``ops.h``: the op resolver's size and registrations, as deploy writes them."""
    from tinyml_edu.deploy import resolver_method

    adds = " ".join(f"r.{resolver_method(op)}();" for op in ops)
    return ("// Generated by tinyml-edu: the model's ops, registered as the sketch does.\n"
            f"#define TME_OP_COUNT {len(ops)}\n"
            f"#define TME_REGISTER_OPS(r) do {{ {adds} }} while (0)\n")


def sketch_library_src() -> Path:
    """``src/`` of the course's Arduino library (tinyml_edu_protocol), as deploy copies it."""
    from tinyml_edu.deploy import PROTOCOL_LIBRARY, firmware_dir

    return firmware_dir() / "libraries" / PROTOCOL_LIBRARY / "src"


def build_program(export_dir: Path, ops: list[str], work_dir: Path, kit: Path | str | None = None,
                  jobs: int = 2, audio_input: bool = False,
                  imu_input: bool = False) -> BuildResult:
    """Compile and link ``work_dir/harness.elf`` from a run's ``export/`` folder
    (``export.MODEL_SOURCE``, ``model_data.h``, ``model_settings.h``). ``audio_input``: read
    raw clips and compute the model input with the sketch's front end (an audio model's
    ``model_settings.h`` has its ``FEATURE_*`` settings). ``imu_input``: read raw float32 IMU
    windows and scale them with the sketch's IMU code (an IMU model's ``model_settings.h``)."""
    if audio_input and imu_input:
        raise BuildError("a program computes audio or IMU inputs, not both")
    started = time.perf_counter()
    toolchain, kit = find_toolchain(), find_kit(kit)
    cache = ObjectCache(toolchain, kit, jobs)
    work_dir.mkdir(parents=True, exist_ok=True)
    for name in (export.MODEL_SOURCE, "model_data.h", "model_settings.h"):
        if not (export_dir / name).is_file():
            raise BuildError(f"{export_dir / name} is missing: export the model first "
                             "(tinyml-edu run writes export/)")
        shutil.copy(export_dir / name, work_dir / name)
    (work_dir / "ops.h").write_text(ops_header(ops), encoding="utf-8")
    if audio_input and "FEATURE_KIND" not in (work_dir / "model_settings.h").read_text(
            encoding="utf-8"):
        raise BuildError(f"{export_dir / 'model_settings.h'} has no audio feature settings "
                         "(FEATURE_KIND): only an audio run's export can compute its input on "
                         "the board")
    if imu_input and "FEATURE_WINDOW" not in (work_dir / "model_settings.h").read_text(
            encoding="utf-8"):
        raise BuildError(f"{export_dir / 'model_settings.h'} has no IMU feature settings "
                         "(FEATURE_WINDOW): only an IMU run's export can scale its input on "
                         "the board")

    library_objects = cache.objects(framework_sources(cache.library)
                                    + kernel_sources(cache.library, ops))
    archive = cache.cmsis_nn_archive()
    harness_defines = ['-DTME_INPUT_FILE="inputs.bin"', '-DTME_OUTPUT_FILE="outputs.bin"']
    local = [(work_dir / export.MODEL_SOURCE, []), (HARNESS / "startup.c", [])]
    if audio_input or imu_input:
        src = sketch_library_src()
        harness_defines += ["-DTME_AUDIO_INPUT=1" if audio_input else "-DTME_IMU_INPUT=1",
                            '-DTME_BOARD_INPUT_FILE="board_inputs.bin"', f"-I{src}"]
        local.append((src / "tinyml_edu_dsp.c", []))  # the core's C flags, as the sketch's
    local.append((HARNESS / "harness.cpp", harness_defines))
    local_objects = []
    for source, extra in local:
        obj = work_dir / (source.stem + ".o")
        command = cache.command(source) + [f"-I{work_dir}", *extra]
        error = _compile_one(command, obj)
        if error:
            raise BuildError(f"{source.name} failed to compile:\n{error}")
        local_objects.append(obj)

    elf = work_dir / "harness.elf"
    link = [toolchain.gxx, *[f for f in cache.cxxflags if f.startswith("-m")],
            "--specs=rdimon.specs", "-nostartfiles", "-Wl,--gc-sections",
            f"-T{HARNESS / 'mps2_an386.ld'}", *map(str, local_objects),
            *map(str, library_objects), str(archive), "-lm", "-o", str(elf)]
    done = subprocess.run(link, capture_output=True, text=True)
    if done.returncode != 0:
        raise BuildError("linking the Cortex-M4 program failed:\n" + done.stderr[-4000:])
    return BuildResult(elf=elf, mark_address=symbol_address(toolchain, elf, "tme_mark"),
                       objects_compiled=cache.compiled, objects_cached=cache.cached,
                       seconds=round(time.perf_counter() - started, 2), ops=ops,
                       flags=cache.cxxflags, audio_input=audio_input, imu_input=imu_input)


def symbol_address(toolchain: Toolchain, elf: Path, name: str) -> int:
    out = subprocess.run([toolchain.nm, str(elf)], capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16) & ~1  # a Thumb function's address has bit 0 set
    raise BuildError(f"symbol {name} not found in {elf}")


def plugin_path(kit: Path | str | None = None) -> Path:
    toolchain = find_toolchain()
    return ObjectCache(toolchain, find_kit(kit)).plugin()


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="tinyml-edu-m4-"))
