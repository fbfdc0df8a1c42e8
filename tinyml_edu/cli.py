"""The `tinyml-edu` command line: parse, call the library, print. Nothing else lives here.

Library modules are imported inside each command so that `--help`, `doctor`, `boards` and
`data` never pay for a TensorFlow import.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tinyml_edu.errors import InputError, MissingFileError, TinyMLEduError
from tinyml_edu.i18n import _
from tinyml_edu.run_report import REPORT_FILE, RunReport

# Every user error (a TinyMLEduError) exits with this code; any other exception is a bug and keeps
# its traceback.
USER_ERROR = 2


def _cmd_doctor(args: argparse.Namespace) -> int:
    from tinyml_edu import doctor

    checks = doctor.run_checks(train_steps=not args.quick)
    if args.json:
        print(json.dumps([c.__dict__ for c in checks], indent=2))
    else:
        print(doctor.format_checks(checks))
    return 0 if doctor.core_ok(checks) else 1


def _cmd_boards(args: argparse.Namespace) -> int:
    from tinyml_edu.boards import BOARDS

    if args.json:
        print(json.dumps({bid: b.to_dict() for bid, b in BOARDS.items()}, indent=2))
        return 0
    rows = [("id", "board", "CPU", "MHz", "RAM KB", "flash KB", "arduino-cli FQBN")]
    for b in BOARDS.values():
        mhz = f"{b.clock_hz / 1e6:g}" if b.clock_hz else "host"
        rows.append((b.id, b.name, b.cpu, mhz, str(b.ram_bytes // 1024),
                     str(b.flash_bytes // 1024), b.fqbn or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from tinyml_edu import pipeline

    if args.project not in pipeline.PROJECTS:
        print(f"error: unknown project {args.project!r}. Available projects:", file=sys.stderr)
        width = max(map(len, pipeline.PROJECTS))  # names line up, however long
        for p in pipeline.PROJECTS.values():
            print(f"  {p.name:<{width}} {p.description}", file=sys.stderr)
        return USER_ERROR
    out = Path(args.out) if args.out else Path("runs") / args.project
    log = (lambda _msg: None) if args.quiet else print
    pipeline.run(args.project, out, seed=args.seed, progress=not args.quiet, log=log,
                 data=args.data)
    if args.quiet:
        print(out / REPORT_FILE)
        return 0
    report = RunReport.load(out)
    metric, value = next((k, v) for k, v in report.metrics.items() if k.startswith("int8_"))
    print(f"{metric} {value:.4f}; int8 model {report.model_bytes:,} bytes; "
          f"TFLM arena {report.arena_bytes:,} bytes ({report.arena_source})")
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    from tinyml_edu import datasets

    if args.data_command == "list":
        known = datasets.registry()
        width = max(map(len, known), default=0)  # names line up, however long
        for name, ds in known.items():
            size = sum(f.bytes for f in ds.files)
            print(f"{name:<{width}} {ds.task:<15} {sum(ds.splits.values()):>6} examples "
                  f"{size / 1e3:>8,.0f} kB  {ds.description}")
        return 0
    if args.data_command == "info":
        ds = datasets.info(args.name)
        print(json.dumps({k: v for k, v in ds.__dict__.items() if k != "files"}, indent=2,
                         default=str))
        print(f"files: {len(ds.files)}, {sum(f.bytes for f in ds.files):,} bytes; "
              f"datasheet: {datasets.data_dir() / ds.datasheet}")
        return 0
    if args.data_command == "verify":
        problems = datasets.verify(args.name)
        for p in problems:
            print(p, file=sys.stderr)
        if problems:
            print(f"{len(problems)} file(s) missing or corrupted", file=sys.stderr)
            return 1
        print("all files match the manifest")
        return 0
    if args.data_command == "stream":
        return _write_stream(Path(args.out))
    if args.data_command == "import":
        return _cmd_data_import(args)
    # what is left is "generate"
    ds = datasets.generate(args.name, seed=args.seed, scale=args.scale)
    print(f"wrote {len(ds.files)} file(s) for {ds.name}: {ds.splits}")
    return 0


def _write_stream(out: Path) -> int:
    import soundfile

    from tinyml_edu import listen
    from tinyml_edu.generators import kws_stream

    if out.suffix.lower() not in (".wav", ".flac"):
        raise InputError(f"--out {out}: name a .wav or .flac file")
    audio, events = kws_stream.build()
    out.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(out, audio, kws_stream.kws.SAMPLE_RATE)
    listen.write_truth(out.with_suffix(".csv"), events)
    print(f"wrote {out} ({len(audio) / kws_stream.kws.SAMPLE_RATE / 60:.1f} min, "
          f"{len(events)} keywords) and {out.with_suffix('.csv')}")
    return 0


def _cmd_data_import(args: argparse.Namespace) -> int:
    from tinyml_edu import speech_commands  # the only source_kind so far

    summary = speech_commands.import_speech_commands(
        args.dir, args.out, unknown_share=args.unknown_share, silence_share=args.silence_share,
        seed=args.seed, log=None if args.quiet else print)
    print(summary.format())
    if summary.shared_speakers:
        print(f"warning: {len(summary.shared_speakers)} speaker(s) are in more than one of the "
              f"lists' splits (e.g. {summary.shared_speakers[0]}); test accuracy then includes "
              "voices the model trained on", file=sys.stderr)
    if summary.listed_missing:
        print(f"note: {summary.listed_missing} file(s) named in the validation/testing lists are "
              "not in the folder", file=sys.stderr)
    print(f"wrote {summary.out_dir}; train on it with "
          f"`tinyml-edu run kws --data {summary.out_dir}`")
    return 0


def _cmd_profile(args: argparse.Namespace) -> int:
    from tinyml_edu import profile

    model = Path(args.model)
    if not model.is_file():
        raise MissingFileError(f"{model} not found; give the path of a .tflite file")
    try:
        prof = profile.profile(model.read_bytes())
    except ValueError as err:  # not a flatbuffer: the file, not the code, is wrong
        raise InputError(f"{model} is not a valid .tflite model: {err}") from err
    if args.json:
        print(json.dumps(prof.to_dict(), indent=2))
        return 0
    print(f"{model.name}: {prof.model_bytes:,} bytes, arena {prof.arena_bytes:,} bytes "
          f"({prof.arena_source}), {prof.macs:,} MACs, ops {prof.op_counts()}")
    for board_id, fit in prof.boards.items():
        print(f"  {board_id:<22} {'fits' if fit.fits else 'DOES NOT FIT':<12} "
              f"flash {fit.flash_bytes:>9,}  RAM {fit.ram_bytes:>8,}  ~{fit.latency_ms:.3f} ms")
    return 0


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _virtual_options(args: argparse.Namespace) -> dict:
    """--source/--speed go to the virtual board only."""
    options = {k: v for k, v in (("source", args.source), ("speed", args.speed)) if v is not None}
    if options and args.port != "virtual":
        raise InputError("--source and --speed only apply to --port virtual")
    return options


def _cmd_capture(args: argparse.Namespace) -> int:
    from tinyml_edu import capture

    if args.sensor == "camera":
        return _capture_frames(args)
    missing = [flag for flag, value in (("--label", args.label), ("--seconds", args.seconds))
               if value is None]
    if missing:
        raise InputError(f"--sensor {args.sensor} needs {' and '.join(missing)}")
    if args.frames is not None:
        raise InputError("--frames is for --sensor camera; IMU and audio take --seconds")
    result = capture.capture(args.port, args.sensor, args.label, args.seconds, args.out,
                             progress=not args.quiet, baud=args.baud, speaker=args.speaker,
                             **_virtual_options(args))
    lost = f"; {result.lost_frames} frame(s) lost, {result.corrupted} corrupted line(s)"
    if result.note:
        print(f"note: {result.note}", file=sys.stderr)
    if result.interrupted:
        print(f"{result.reason}; saved {result.samples} samples to {result.path}{lost}",
              file=sys.stderr)
        return 130 if "Ctrl-C" in result.reason else USER_ERROR
    print(f"saved {result.samples} samples ({result.seconds:.2f} s) to {result.path}{lost}")
    return 0


def _capture_frames(args: argparse.Namespace) -> int:
    from tinyml_edu import capture

    result = capture.capture_frames(args.port, args.label, args.out, frames=args.frames,
                                    seconds=args.seconds, progress=not args.quiet,
                                    baud=args.baud, group=args.speaker,
                                    **_virtual_options(args))
    problems = f"; {result.lost_frames} frame(s) lost, {result.bad_frames} damaged frame(s) skipped"
    if result.note:
        print(f"note: {result.note}", file=sys.stderr)
    if result.interrupted:
        print(f"{result.reason}; the {result.frames} frames saved before are in "
              f"{result.folder}{problems}", file=sys.stderr)
        return 130 if "Ctrl-C" in result.reason else USER_ERROR
    print(f"saved {result.frames} frames (PNG + JSON) to {result.folder}{problems}")
    return 0


def _cmd_monitor(args: argparse.Namespace) -> int:
    from tinyml_edu import capture

    try:
        for event in capture.monitor(args.port, seconds=args.seconds, baud=args.baud,
                                     **_virtual_options(args)):
            line = capture.format_event(event)
            if line is not None:
                print(line, flush=True)
    except KeyboardInterrupt:
        return 0  # Ctrl-C is how a live view ends
    return 0


def _cmd_deploy(args: argparse.Namespace) -> int:
    from tinyml_edu import deploy

    labels = args.labels.split(",") if args.labels else None
    result = deploy.build_sketch(args.model, args.board, args.out, labels=labels, kit=args.kit)
    sketch = result.sketch_dir
    print(f"sketch: {sketch / (sketch.name + '.ino')}")
    print(f"  ops: {', '.join(result.ops)}; arena reserved: {result.arena_bytes:,} bytes "
          f"({result.arena_source} + margin)")
    if result.frame_buffer_bytes:
        print(f"  camera frame buffer: {result.frame_buffer_bytes:,} bytes (counted in the fit "
              "table)")
    if result.model_flash_bytes is not None:
        print(f"  model data in flash: {result.model_flash_bytes:,} bytes ({result.flash_note})")
    else:
        print(f"  {result.flash_note}")
    for message in result.messages:
        print(f"  note: {message}")
    virtual = args.port == "virtual" or args.board == "virtual"
    if args.bug and not virtual:
        raise InputError("--bug breaks the virtual board only: add --port virtual")
    if virtual:  # nothing to upload: flash it
        folder = deploy.flash_virtual(sketch, bug=args.bug)
        broken = f" with the bug {args.bug!r}" if args.bug else ""
        print(f"deployed to the virtual board ({folder}){broken}; watch it with "
              "`tinyml-edu monitor --port virtual`")
    elif args.upload:
        deploy.upload(sketch, args.board, args.port)
        print(f"uploaded to {args.port}; watch it with `tinyml-edu monitor --port {args.port}`")
    return 0


def _print_labels(results: list, as_json: bool) -> None:
    """One line per labelled file, or (``--json``) a list of {file, label, score}."""
    if as_json:
        print(json.dumps([{"file": r.file, "label": r.label, "score": round(r.score, 4),
                           **({"centroids": [list(p) for p in r.centroids]}
                              if getattr(r, "centroids", None) is not None else {})}
                          for r in results], indent=2))
        return
    for r in results:
        where = getattr(r, "centroids", None)
        at = f"  at (row,col) {' '.join(f'({a},{b})' for a, b in where)}" if where else ""
        print(f"{r.label:<16} {r.score:.3f}  {r.file}{at}")


def _cmd_predict(args: argparse.Namespace) -> int:
    from tinyml_edu import predict

    results = predict.predict_files(args.run_dir, args.files, backend=args.runtime)
    for r in results:
        if r.resampled_from:
            print(f"note: {r.file} is {r.resampled_from:g} Hz: resampled to the model's rate",
                  file=sys.stderr)
    _print_labels(results, args.json)
    return 0


def _listen_params(args: argparse.Namespace):
    from tinyml_edu.listen import ListenParams

    chosen = {name: getattr(args, name) for name in ("hop_ms", "average_window_ms", "min_count",
                                                     "threshold", "suppression_ms")}
    return ListenParams(**{k: v for k, v in chosen.items() if v is not None})


def _listen_to_board(args: argparse.Namespace) -> int:
    from tinyml_edu import listen_board

    chosen = [name for name in ("recording", "truth", "hop_ms", "average_window_ms", "min_count",
                                "threshold", "suppression_ms") if getattr(args, name) is not None]
    if chosen:
        raise InputError(f"with --port the board listens with the settings it was deployed with: "
                         f"leave out {', '.join(chosen)} (a recording for the virtual board goes "
                         "in --source)")

    def show(d) -> None:
        print(f"{d.time:9.2f} s  {d.label:<12} {d.score:.3f}", flush=True)

    result = listen_board.listen_to_board(args.run_dir, args.port, args.seconds, args.source,
                                          args.speed, on_detection=None if args.json else show)
    for note in result.notes:
        print(note, file=sys.stderr)
    if args.json:
        print(json.dumps([d.to_dict() for d in result.detections], indent=2))
    else:
        print(f"{len(result.detections)} detection(s) in {result.seconds:.1f} s of listening",
              file=sys.stderr)
    return 0


def _cmd_listen(args: argparse.Namespace) -> int:
    from tinyml_edu import listen

    if args.port is not None:
        return _listen_to_board(args)
    if args.source is not None or args.seconds is not None or args.speed is not None:
        raise InputError("--source, --seconds and --speed are for listening to a board (--port)")
    if args.recording is None:
        raise InputError("give a RECORDING to listen to, or --port PORT|virtual for a board")
    params = _listen_params(args)
    listener = listen.Listener.from_run(args.run_dir)
    audio = listener.read(args.recording)
    detections = listener.listen(audio, params)
    score = None
    if args.truth:
        score = listen.score_detections(detections, listen.read_truth(args.truth),
                                        len(audio) / listener.rate)
    if args.json:
        found = [d.to_dict() for d in detections]
        print(json.dumps(found if score is None else {"detections": found,
                                                       "score": score.to_dict()}, indent=2))
        return 0
    for d in detections:
        print(f"{d.time:9.2f} s  {d.label:<12} {d.score:.3f}")
    print(f"{len(detections)} detection(s) in {len(audio) / listener.rate:.1f} s", file=sys.stderr)
    if score is not None:
        print(f"hits {score.hits}/{score.keywords} ({score.hit_rate:.1%}), false alarms "
              f"{score.false_alarms} ({score.false_alarms_per_hour:.1f} per hour)")
    return 0


def _cmd_edge_impulse(args: argparse.Namespace) -> int:
    from tinyml_edu import edge_impulse

    if args.ei_command == "export-eim":
        path = edge_impulse.export_eim(args.run_dir, args.out, inputs=args.inputs,
                                       python=args.python)
        print(f"wrote {path}; try it with `tinyml-edu edge-impulse run {path} RECORDING` "
              "or edge_impulse_linux's ImpulseRunner")
        return 0
    if args.ei_command == "run":
        results = edge_impulse.classify_recordings(args.eim, args.files)
        _print_labels(results, args.json)
        return 0
    # what is left is "export-data"
    exported = edge_impulse.export_ei_dataset(args.folder, args.out, rate=args.rate)
    counts = ", ".join(f"{label} {n}" for label, n in exported.per_label.items())
    print(f"wrote {len(exported.files)} file(s) to {exported.out_dir} ({counts}); "
          f"upload them as {exported.readme} says")
    return 0


# --- course (instructor) ---------------------------------------------------------------------


def _course_dir(args: argparse.Namespace) -> Path:
    from tinyml_edu.course import config

    return Path(args.course) if args.course else config.default_course_dir()


def _lessons_root(args: argparse.Namespace) -> Path:
    """The lesson sources: those of --course when given, else the ones this install finds."""
    from tinyml_edu.course import config, lessons

    return config.source_dir(args.course) if args.course else lessons.lessons_dir()


def _cmd_course_list(args: argparse.Namespace) -> int:
    from tinyml_edu.course import lessons

    for lesson in lessons.list_lessons(_lessons_root(args)):
        auto, manual = lessons.points(lessons.read_notebook(lesson.notebook))
        print(f"{lesson.id:32} {auto:4g} auto + {manual:g} by hand  {lesson.title}")
    return 0


def _cmd_course_init(args: argparse.Namespace) -> int:
    from tinyml_edu.course import config

    path = config.init_course(args.dir, args.source)
    print(f"course folder ready: {path}\nwork in {args.dir} (nbgrader and tinyml-edu course "
          "read its nbgrader_config.py)")
    return 0


def _cmd_course_check(args: argparse.Namespace) -> int:
    from tinyml_edu.course import check

    # With --json, stdout holds only the JSON: progress goes to stderr.
    log = (lambda message: print(message, file=sys.stderr)) if args.json else print
    results = check.check_course(args.lessons or None, log=log, root=_lessons_root(args),
                                 lang=args.lang, jobs=args.jobs)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        print(check.format_table(results))
    return 0 if all(r.ok for r in results) else 1


def _source_dir(args: argparse.Namespace) -> Path:
    from tinyml_edu.course import release

    return release.source_dir(_course_dir(args))


def _cmd_course_release(args: argparse.Namespace) -> int:
    from tinyml_edu.course import release

    if not args.lessons and not args.all:
        raise InputError("name lessons to release, or pass --all")
    for path in release.release(_course_dir(args), args.lessons, langs=_langs(args.lang)):
        print(f"zip for the LMS or a USB stick: {path}")
    return 0


def _langs(values: list[str] | None) -> tuple[str, ...]:
    """``--lang fr --lang es,pt`` or ``--lang all``: the translated languages asked for."""
    from tinyml_edu import i18n

    codes = [c for value in values or [] for c in value.split(",") if c.strip()]
    if "all" in codes:
        return tuple(i18n.LANGUAGES)
    return tuple(i18n.check_language(c) for c in codes)


def _cmd_course_translations(args: argparse.Namespace) -> int:
    from tinyml_edu import i18n
    from tinyml_edu.course import lessons, translate

    source = _lessons_root(args)
    langs = _langs(args.lang) or tuple(i18n.LANGUAGES)
    if args.update:
        written = translate.update(source, langs) + translate.update_package(langs)
        print(f"templates and catalogues in step with the English ({len(written)} files)")
    chosen = ([lessons.get_lesson(n, source) for n in args.lessons] if args.lessons
              else lessons.list_lessons(source))
    results = [translate.status(lesson, lang) for lesson in chosen for lang in langs]
    results += [translate.package_status(lang) for lang in langs]
    print(translate.format_report(results, verbose=bool(args.lessons)))
    core = [r for r in results if r.lesson[:2] in translate.CORE_LESSONS or r.lesson[0] == "("]
    return 0 if all(r.complete for r in core) else 1


def _cmd_course_collect(args: argparse.Namespace) -> int:
    from tinyml_edu.course import collect

    report = collect.collect(_course_dir(args), args.source, args.lesson, args.students)
    print(report.format())
    return 1 if report.unmatched else 0


def _cmd_course_autograde(args: argparse.Namespace) -> int:
    from tinyml_edu.course import autograde, lessons

    lesson = lessons.get_lesson(args.lesson, _source_dir(args)).id
    # --json: stdout is the JSON alone (a script reads it); the grader's notes go to stderr
    log = (lambda message: print(message, file=sys.stderr)) if args.json else print
    results = autograde.autograde(_course_dir(args), lesson, args.students or None,
                                  workers=args.workers, timeout=args.timeout,
                                  cell_timeout=args.cell_timeout, memory_mb=args.memory,
                                  log=log)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        print(autograde.format_results(results))
    return 0


def _cmd_course_feedback(args: argparse.Namespace) -> int:
    from tinyml_edu.course import lessons, release

    lesson = lessons.get_lesson(args.lesson, _source_dir(args)).id
    release.feedback(_course_dir(args), lesson)
    return 0


def _cmd_course_export(args: argparse.Namespace) -> int:
    from tinyml_edu.course import export

    path = export.export_csv(_course_dir(args), args.csv)
    print(f"grades: {path}")
    if export.NOT_GRADED in path.read_text(encoding="utf-8"):
        print(f"some written answers are {export.NOT_GRADED} (grade them in formgrader, then "
              "export again): their cells say so, and each lesson's :manual column too")
    return 0


def _cmd_course_report(args: argparse.Namespace) -> int:
    from tinyml_edu.course import export, lessons

    lesson = lessons.get_lesson(args.lesson, _source_dir(args)).id
    png, text = export.report(_course_dir(args), lesson, args.out)
    print(f"{text}\nplot: {png}")
    return 0


# --- bundle (offline classroom) --------------------------------------------------------------


def _cmd_bundle(args: argparse.Namespace) -> int:
    from tinyml_edu import bundle

    if args.bundle_command == "build":
        from tinyml_edu.bundle import build

        python = args.python or f"{sys.version_info[0]}.{sys.version_info[1]}"
        sizes = build.build(args.out, args.os, python, wheel=args.wheel,
                            langs=_langs(args.lang))
        print(f"bundle ready: {args.out} ({args.os}, Python {python}); copy it onto sticks "
              f"with `tinyml-edu bundle copy {args.out} STICK`")
        print(build.format_sizes(sizes))
        return 0
    if args.bundle_command == "verify":
        from tinyml_edu.bundle import checksums

        result = bundle.verify(args.dir)
        for line in checksums.report(result, args.dir):
            print(line, file=sys.stdout if result.ok else sys.stderr)
        return 0 if result.ok else 1
    from tinyml_edu.bundle import checksums  # what is left is "copy"

    copied = bundle.copy(args.src, args.dest, log=None if args.quiet else print)
    result = bundle.verify(args.dest)
    for line in checksums.report(result, args.dest):
        print(line, file=sys.stdout if result.ok else sys.stderr)
    print(f"copied {len(copied.copied)} file(s) ({copied.bytes_copied / 1e6:.1f} MB), "
          f"{len(copied.resumed)} resumed, {len(copied.skipped)} already in place")
    return 0 if result.ok else 1


def build_parser() -> argparse.ArgumentParser:
    from tinyml_edu import __version__

    parser = argparse.ArgumentParser(
        prog="tinyml-edu",
        description="TinyML course tools: from a board's sensors to a model running on it.")
    parser.add_argument("--version", action="version", version=f"tinyml-edu {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("doctor", help="check what is installed and what to do about the rest",
                       description="Versions, CPU features and oneDNN, which parts work, and "
                       "one training step of every project's model (each in a child process, so "
                       "a TensorFlow crash becomes a FAIL line naming the model). About 30 s on "
                       "2 cores; --quick skips the training steps (about 10 s).")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--quick", action="store_true",
                   help="skip the one-step training of each model (saves about 20 s)")
    p.set_defaults(func=_cmd_doctor)

    p = sub.add_parser("boards", help="the board catalog")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_boards)

    p = sub.add_parser("run", help="train, quantize, profile and export one project")
    p.add_argument("project", help="project name, e.g. sine")
    p.add_argument("--out", help="output folder (default: runs/PROJECT)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="print only the report path")
    p.add_argument("--data", help="train on your own recordings: a folder per label "
                                  "(what `tinyml-edu capture` writes)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("data", help="the shipped data sets")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    data_sub.add_parser("list", help="list data sets")
    q = data_sub.add_parser("info", help="metadata of one data set")
    q.add_argument("name")
    q = data_sub.add_parser("verify", help="check every file against the manifest")
    q.add_argument("name", nargs="?", help="one data set (default: all)")
    q = data_sub.add_parser("generate", help="regenerate a data set from its generator")
    q.add_argument("name")
    q.add_argument("--seed", type=int, help="default: the seed the shipped files were made with")
    q.add_argument("--scale", type=float, default=1.0, help="multiply the number of examples")
    q = data_sub.add_parser("stream", help="write the long test recording for `listen`: the "
                            "kws test split's words on a background, and their times (.csv)")
    q.add_argument("--out", required=True, help="the .wav (or .flac) to write")
    q = data_sub.add_parser("import", help="turn a public data set you downloaded into a "
                            "recordings folder for `tinyml-edu run PROJECT --data`")
    q.add_argument("source_kind", choices=("speech-commands",),
                   help="speech-commands: Google Speech Commands v2 (for kws)")
    q.add_argument("dir", help="the unpacked speech_commands_v0.02.tar.gz: DIR/<word>/*.wav, "
                   "validation_list.txt, testing_list.txt, _background_noise_/")
    q.add_argument("--out", required=True, help="folder to write (new, empty, or an earlier "
                   "import, which is replaced)")
    q.add_argument("--unknown-share", type=float, default=0.1,
                   help="part of each split that is non-keyword words (default 0.1)")
    q.add_argument("--silence-share", type=float, default=0.1,
                   help="part of each split that is background noise (default 0.1)")
    q.add_argument("--seed", type=int, default=0, help="picks unknown clips and noise chunks")
    q.add_argument("--quiet", action="store_true", help="only the summary")
    p.set_defaults(func=_cmd_data)

    p = sub.add_parser("profile", help="size, TFLM arena and board fit of a .tflite model")
    p.add_argument("model", help="path to a .tflite file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_profile)

    p = sub.add_parser("capture", help="record labelled sensor data from a board (or virtual)")
    p.add_argument("--port", required=True,
                   help="serial port (/dev/ttyACM0, COM3) or 'virtual' for the virtual board")
    p.add_argument("--sensor", required=True, choices=("imu", "audio", "camera"),
                   help="imu: accelerometer and gyroscope (firmware/capture_imu); audio: the "
                   "microphone (firmware/capture_audio_nano or _xiao); camera: pictures, one PNG "
                   "+ JSON per frame (firmware/capture_camera_nano or _xiao)")
    p.add_argument("--label",
                   help="class of what you record, e.g. W; it names the folder OUT/LABEL/ "
                   "(needed for imu and audio; camera frames without a label go to OUT/). With "
                   "--port virtual the board plays that class of its data set when it has it "
                   "(--sensor audio --label yes: the kws set's 'yes' clips), else all of it")
    p.add_argument("--seconds", type=float,
                   help="how long to record (needed for imu and audio)")
    p.add_argument("--frames", type=int,
                   help="camera: how many frames to save (or give --seconds, or both)")
    p.add_argument("--out", required=True, help="data folder; files go to OUT/LABEL/")
    p.add_argument("--source", help="virtual board only: data set name or recordings folder "
                   "(camera: a folder of pictures, one picture or test-card); ./NAME for a folder "
                   "named like a data set")
    p.add_argument("--speed", type=_positive_float, help="virtual board only: times real time")
    p.add_argument("--baud", type=int, default=115200, help="default 115200")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.add_argument("--speaker", "--group", dest="speaker",
                   help="who records (or, for a camera, which place or scene): a chosen "
                   "pseudonym, not a real name (e.g. blue-fox); recordings are then split by "
                   "it, so a test set holds voices (or scenes) the model never saw, and `voices "
                   "delete` finds them")
    p.set_defaults(func=_cmd_capture)

    p = sub.add_parser("monitor", help="show a deployed model's predictions live")
    p.add_argument("--port", required=True, help="serial port or 'virtual'")
    p.add_argument("--seconds", type=float, help="stop after this long (default: Ctrl-C)")
    p.add_argument("--source", help="virtual board only: data set name or recordings folder "
                   "(./NAME for a folder named like a data set)")
    p.add_argument("--speed", type=_positive_float, help="virtual board only: times real time")
    p.add_argument("--baud", type=int, default=115200, help="default 115200")
    p.set_defaults(func=_cmd_monitor)

    p = sub.add_parser("deploy", help="make an Arduino sketch for a model (and upload it)")
    p.add_argument("model", help="a .tflite file, e.g. runs/gestures/model_int8.tflite, or a run "
                   "folder (its int8 model)")
    p.add_argument("--board", required=True, help="board id (see `tinyml-edu boards`)")
    p.add_argument("--out", required=True, help="folder for the sketch")
    p.add_argument("--labels", help="comma-separated labels (default: from the run's report)")
    p.add_argument("--upload", action="store_true", help="compile and upload with arduino-cli")
    p.add_argument("--port", help="serial port for --upload, or 'virtual' for the virtual board "
                   "(as --board virtual)")
    p.add_argument("--kit", help="the compile-only Arduino kit (default: $TINYML_EDU_ARDUINO_KIT); "
                   "the flash check then uses its core's compiler flags")
    p.add_argument("--bug", help="virtual board only: flash a firmware bug with the model, for "
                   "a debugging drill (lesson 16): missing_op, arena_too_small, swapped_axes, "
                   "wrong_input_scale or sample_rate; deploying again without it fixes it")
    p.set_defaults(func=_cmd_deploy)

    p = sub.add_parser("predict", help="label your own recordings with a run's int8 model",
                       description="Label recordings with a run's int8 model. Audio at another "
                       "sample rate is resampled to the model's (a note says so); IMU CSVs must "
                       "be at the capture rate. A camera model (images, cars) labels pictures "
                       "(PNG, JPEG), each brought to the model's frame as the board does it.")
    p.add_argument("run_dir", help="a `tinyml-edu run` output folder")
    p.add_argument("files", nargs="+", help="WAV/FLAC/CSV files (camera models: pictures) or "
                   "folders of them")
    p.add_argument("--json", action="store_true", help="a list of {file, label, score} (and, for "
                   "a counting model, centroids: where it counted, in the model frame's pixels)")
    p.add_argument("--runtime", choices=("litert", "tflm"), default="litert",
                   help="litert (default), or tflm: the board's kernels (tflite-micro, Linux "
                   "x86-64), so the answers are the board's to the last digit")
    p.set_defaults(func=_cmd_predict)

    from tinyml_edu.emulator import cli as emulator_cli  # `verify`: the emulated Cortex-M4

    emulator_cli.add_parser(sub)

    p = sub.add_parser("listen", help="a keyword model listening to a long recording, as the "
                       "board does", description="Run a run's int8 keyword model over a "
                       "recording of any length as the board does (features of the last second "
                       "every hop, int8 inference, posterior smoothing) and print the keywords "
                       "it detects. With --truth, count hits and false alarms. With --port, "
                       "print the keywords a board with the run's model deployed reports (its "
                       "K lines) instead.")
    p.add_argument("run_dir", help="a `tinyml-edu run kws` output folder")
    p.add_argument("recording", nargs="?",
                   help="a WAV or FLAC recording (other rates are resampled)")
    p.add_argument("--json", action="store_true",
                   help="a JSON list of {time, label, score} (with --truth: and the score)")
    p.add_argument("--truth", help="CSV label,start,end of the keywords in the recording "
                   "(`tinyml-edu data stream` writes one)")
    p.add_argument("--hop-ms", type=int, help="run the model every this many ms (default 250)")
    p.add_argument("--average-window-ms", type=int, help="average scores over this window "
                   "(default 750)")
    p.add_argument("--min-count", type=int, help="inferences the window must hold (default 3)")
    p.add_argument("--threshold", type=float, help="lowest averaged score (default 0.5)")
    p.add_argument("--suppression-ms", type=int, help="quiet time after a detection "
                   "(default 1000)")
    p.add_argument("--port", help="listen to a board instead: its serial port, or 'virtual' "
                   "(deploy the run first)")
    p.add_argument("--seconds", type=_positive_float,
                   help="with --port: how long to listen (virtual with --source: until the "
                   "recording ends)")
    p.add_argument("--source", help="--port virtual only: the WAV or FLAC recording the virtual "
                   "board hears, once")
    p.add_argument("--speed", type=_positive_float, help="--port virtual only: times real time")
    p.set_defaults(func=_cmd_listen)

    p = sub.add_parser("edge-impulse",
                       help="Linux boards: .eim model files and data for Edge Impulse")
    ei_sub = p.add_subparsers(dest="ei_command", required=True)
    q = ei_sub.add_parser("export-eim", help="write an .eim (Edge Impulse Linux model) of a run")
    q.add_argument("run_dir", help="a `tinyml-edu run` output folder (or a .tflite file)")
    q.add_argument("--out", required=True, help="the .eim file to write")
    q.add_argument("--inputs", choices=("raw", "features"),
                   help="what classify takes: raw sensor windows (default where the project "
                        "computes its features) or model inputs")
    q.add_argument("--python", help="interpreter for the #! line (default: this one)")
    q = ei_sub.add_parser("run", help="label recordings with an .eim through Edge Impulse's SDK")
    q.add_argument("eim", help="an .eim file")
    q.add_argument("files", nargs="+", help="WAV/FLAC/CSV files or folders of them")
    q.add_argument("--json", action="store_true", help="a list of {file, label, score}")
    q = ei_sub.add_parser("export-data",
                          help="convert a recordings folder for edge-impulse-uploader")
    q.add_argument("folder", help="a folder per label (what `tinyml-edu capture` writes)")
    q.add_argument("--out", required=True, help="folder for the converted files")
    q.add_argument("--rate", type=float, help="sample rate of CSVs without a sidecar rate")
    p.set_defaults(func=_cmd_edge_impulse)

    p = sub.add_parser("course", help="the instructor's nbgrader course (lessons, grading)")
    p.add_argument("--course", help="course folder (default: here if it has nbgrader_config.py, "
                   "else $TINYML_EDU_COURSE, else ./grading/, the repository's course)")
    course_sub = p.add_subparsers(dest="course_command", required=True)
    q = course_sub.add_parser("list", help="the lessons and their points")
    q.set_defaults(func=_cmd_course_list)
    q = course_sub.add_parser("init", help="make a folder an nbgrader course for these lessons")
    q.add_argument("dir")
    q.add_argument("--source", help="the folder of lesson sources (default: the repository's "
                   "lessons/ this command runs from)")
    q.set_defaults(func=_cmd_course_init)
    q = course_sub.add_parser(
        "check", help="execute every solution, release it, autograde solution and blank")
    q.add_argument("lessons", nargs="*", help="lesson ids or numbers (default: all)")
    q.add_argument("--json", action="store_true")
    q.add_argument("--lang", default="en", help="grade the release in this language "
                   "(es, fr, pt; default en)")
    q.add_argument("--jobs", type=int, choices=(1, 2), default=1,
                   help="2: grade each lesson's solution and blank side by side (about half the "
                   "time on 2 cores; the wall times shown then include the other's load)")
    q.set_defaults(func=_cmd_course_check)
    q = course_sub.add_parser("release", help="student versions and one zip per lesson")
    q.add_argument("lessons", nargs="*", help="lesson ids or numbers")
    q.add_argument("--all", action="store_true", help="every lesson")
    q.add_argument("--lang", action="append", help="also in these languages: es, fr, pt, a "
                   "list (es,fr) or all; into release-LANG/ and zips/LESSON-LANG.zip")
    q.set_defaults(func=_cmd_course_release)
    q = course_sub.add_parser(
        "translations", help="what is left to translate; --update after editing the English",
        description="Reports, per lesson and language, the paragraphs that are translated, "
        "missing, stale (the English changed since) or broken (a code span, a formula or a "
        "table row lost). Exits 1 when a core lesson (00-07) or the package's messages are "
        "not complete. The catalogues are in translations/ (see its README).")
    q.add_argument("lessons", nargs="*", help="lesson ids or numbers (default: all); naming "
                   "lessons lists every missing and stale paragraph")
    q.add_argument("--lang", action="append", help="es, fr, pt, a list or all (default: all)")
    q.add_argument("--update", action="store_true", help="refresh the templates from the "
                   "English and mark changed paragraphs stale (fuzzy) in every catalogue")
    q.set_defaults(func=_cmd_course_translations)
    from tinyml_edu.course.collect import HELP as COLLECT_HELP

    q = course_sub.add_parser("collect", help="hand-ins from an LMS zip, a folder or a USB stick "
                              "(needs COURSE/students.csv)", epilog=COLLECT_HELP,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    q.add_argument("source", help="a Moodle or Canvas zip, a folder of notebooks, or a USB "
                   "stick's folder (see below)")
    q.add_argument("--lesson", help="the lesson, when the file names do not say")
    q.add_argument("--students", help="class list CSV (default: COURSE/students.csv)")
    q.set_defaults(func=_cmd_course_collect)
    q = course_sub.add_parser("autograde", help="grade every hand-in of a lesson, in parallel "
                              "sandboxes")
    q.add_argument("lesson", help="lesson id or number")
    q.add_argument("students", nargs="*", help="only these students (default: all)")
    q.add_argument("--workers", type=int, default=2, help="notebooks at once (default 2)")
    q.add_argument("--timeout", type=float, default=900,
                   help="wall and CPU seconds per notebook (default 900)")
    q.add_argument("--cell-timeout", type=float,
                   help="seconds per cell (default: the course's Execute.timeout)")
    q.add_argument("--memory", type=float, default=4096,
                   help="MB of address space per notebook (default 4096)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=_cmd_course_autograde)
    q = course_sub.add_parser("feedback", help="HTML feedback per student, and a zip of it")
    q.add_argument("lesson")
    q.set_defaults(func=_cmd_course_feedback)
    q = course_sub.add_parser("export", help="grades as CSV: a row per student",
                              description="A row per student; per lesson its points, maximum, "
                              "autograded and hand-graded points, then each question. Written "
                              "answers nobody graded yet read 'not graded yet', not 0.")
    q.add_argument("--csv", help="the file to write (default: COURSE/reports/grades.csv, which "
                   "git ignores: grades are personal data)")
    q.set_defaults(func=_cmd_course_export)
    q = course_sub.add_parser("report", help="per-question score plot and the hardest questions "
                              "(written answers not graded yet are listed apart, not ranked)")
    q.add_argument("lesson")
    q.add_argument("--out", help="PNG path (default: COURSE/reports/LESSON-questions.png)")
    q.set_defaults(func=_cmd_course_report)

    p = sub.add_parser("bundle", help="the offline classroom bundle (USB sticks): build, verify, "
                       "copy")
    bundle_sub = p.add_subparsers(dest="bundle_command", required=True)
    q = bundle_sub.add_parser("build", help="wheels, lessons, data and install scripts for one "
                              "OS and Python, to install with no network")
    q.add_argument("--out", required=True, help="bundle folder (new, empty, or an older bundle)")
    q.add_argument("--os", choices=("linux", "windows", "macos"), default="linux",
                   help="the students' OS (default linux; macos means Apple silicon)")
    q.add_argument("--python", help="the students' Python, e.g. 3.11 (default: this one)")
    q.add_argument("--wheel", help="a tinyml-edu wheel to ship (default: build one from this "
                   "source checkout)")
    q.add_argument("--lang", action="append", help="also the lessons in these languages, in "
                   "lessons-LANG/: es, fr, pt, a list (es,fr) or all")
    q = bundle_sub.add_parser("verify", help="check every file; name each missing or corrupted one")
    q.add_argument("dir", help="bundle folder")
    q = bundle_sub.add_parser("copy", help="copy a bundle (e.g. onto a stick); run it again to "
                              "resume after an interruption")
    q.add_argument("src", help="a good bundle")
    q.add_argument("dest", help="where to copy it")
    q.add_argument("--quiet", action="store_true", help="no line per file")
    p.set_defaults(func=_cmd_bundle)

    p = sub.add_parser("voices", help="the class's own voices (recorded in JupyterLab with "
                       "tinyml_edu.voices_widget): pack, pool, delete, train")
    voices_sub = p.add_subparsers(dest="voices_command", required=True)
    q = voices_sub.add_parser("pack", help="zip a student's voices folder for the instructor")
    q.add_argument("folder")
    q.add_argument("--out", required=True, help="the zip to write (NAME.zip)")
    q.add_argument("--pseudonym", help="only this speaker's recordings")
    q = voices_sub.add_parser("pool", help="merge students' zips into one folder (unsafe paths "
                              "refused, nothing overwritten)")
    q.add_argument("zips", nargs="+")
    q.add_argument("--out", required=True, help="the pooled folder (created or added to)")
    q = voices_sub.add_parser("delete", help="delete every recording of a pseudonym")
    q.add_argument("folder")
    q.add_argument("pseudonym")
    q = voices_sub.add_parser("train", help="train kws on a pooled folder; int8 accuracy per "
                              "held-out speaker")
    q.add_argument("folder")
    q.add_argument("--out", required=True, help="the run folder")
    q.add_argument("--base-run", help="a kws run to score on the same speakers, e.g. "
                   "tinyml_edu/pretrained/kws (synthetic voices only)")
    q.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_voices)
    return parser


def _cmd_voices(args: argparse.Namespace) -> int:
    from tinyml_edu import voices

    if args.voices_command == "pack":
        packed = voices.pack(args.folder, args.out, pseudonym=args.pseudonym)
        print(f"{packed.recordings} recording(s) of {', '.join(packed.speakers)} in {packed.path}")
        for line in packed.skipped:
            print(f"skipped {line}", file=sys.stderr)
        return 0
    if args.voices_command == "pool":
        summary = voices.pool(args.zips, args.out)
        print(summary.format())
        return 0 if summary.ok else 1
    if args.voices_command == "delete":
        deleted = voices.delete_speaker(args.folder, args.pseudonym)
        print(f"deleted {len(deleted)} file(s) of {args.pseudonym!r} from {args.folder}")
        return 0 if deleted else 1
    result = voices.train_class_model(args.folder, args.out, seed=args.seed,
                                      base_run=args.base_run)
    print(result.format())
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except TinyMLEduError as err:  # the message says what to do; a traceback would bury it
        print(_("error: {message}").format(message=err), file=sys.stderr)
        return USER_ERROR
    except KeyboardInterrupt:
        print(_("interrupted; files already written are kept"), file=sys.stderr)
        return 130
    except BrokenPipeError:  # `tinyml-edu monitor ... | head`: the reader has seen enough
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
