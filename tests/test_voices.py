"""The class's own voices: clips from the browser saved as 16 kHz WAVs with sidecars, names
checked, a speaker deleted, packs pooled (hostile zips refused, nothing overwritten), and the
pooled folder split by speaker."""

import base64
import json
import zipfile

import numpy as np
import pytest
import soundfile

from tinyml_edu import datasets, voices
from tinyml_edu.cli import main
from tinyml_edu.errors import InputError, MissingFileError
from tinyml_edu.voices_widget import Recorder

BROWSER_RATE = 48000


def _word(rate=BROWSER_RATE, seconds=1.5, start=0.8, length=0.4, freq=440.0, level=0.5):
    """A "recording": silence with a tone burst (the word) from ``start`` for ``length`` s."""
    t = np.arange(int(round(seconds * rate))) / rate
    audio = np.where((t >= start) & (t < start + length),
                     level * np.sin(2 * np.pi * freq * t), 0.0)
    return audio.astype(np.float32)


def _payload(audio, label="yes", pseudonym="blue-fox", rate=BROWSER_RATE, fmt="int16",
             consent=True):
    samples = (np.round(audio * 32767).astype("<i2") if fmt == "int16"
               else audio.astype("<f4"))
    return {"pseudonym": pseudonym, "label": label, "rate": rate, "format": fmt,
            "data": base64.b64encode(samples.tobytes()).decode(), "consent": consent}


def _dominant_hz(samples, rate):
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()]


# ---------------------------------------------------------------------------------------------
# Saving


def test_a_48_khz_payload_is_saved_as_16_khz_int16_with_its_sidecar(tmp_path):
    saved = voices.save_payload(tmp_path, json.dumps(_payload(_word())))
    assert saved.path == tmp_path / "yes" / "blue-fox_yes_1.wav"
    rec = datasets.load_recording(saved.path)
    assert rec.rate == 16000 and rec.data.dtype == np.int16
    assert len(rec.data) == 16000  # the kws window: the loudest second of the 1.5 s
    assert soundfile.info(saved.path).subtype == "PCM_16"
    assert _dominant_hz(rec.data, 16000) == pytest.approx(440, abs=2)  # resampled, not sped up
    assert np.abs(rec.data).max() == pytest.approx(0.5 * 32767, rel=0.05)
    assert rec.sidecar["rate"] == 16000 and rec.sidecar["group"] == "blue-fox"
    assert rec.sidecar["consent"] is True and rec.sidecar["label"] == "yes"
    assert rec.sidecar["recorded_rate"] == BROWSER_RATE
    assert rec.sidecar["recorded_seconds"] == 1.5
    assert saved.peak_dbfs == pytest.approx(-6.0, abs=0.5)


@pytest.mark.parametrize("start, expected", [
    (0.5, (0.35, 0.65)),  # centred
    (0.05, (0.05, 0.35)),  # as far as the recording reaches: from its start
    (1.15, (0.65, 0.95)),  # up to its end
])
def test_the_kept_second_has_the_word_in_its_middle(tmp_path, start, expected):
    audio = _word(start=start, length=0.3) + np.float32(0.001)  # a faint hum all along
    saved = voices.save_payload(tmp_path, _payload(audio))
    data = datasets.load_recording(saved.path).data
    loud = np.flatnonzero(np.abs(data) > 1000) / 16000
    assert loud.min() == pytest.approx(expected[0], abs=0.01)
    assert loud.max() == pytest.approx(expected[1], abs=0.01)
    whole = voices.save_payload(tmp_path, _payload(audio), keep_seconds=None)
    assert len(datasets.load_recording(whole.path).data) == 24000


def test_float32_payloads_and_44_1_khz_are_saved_too(tmp_path):
    saved = voices.save_payload(tmp_path, _payload(_word(rate=44100, freq=1000), fmt="float32",
                                                   rate=44100))
    rec = datasets.load_recording(saved.path)
    assert rec.rate == 16000 and _dominant_hz(rec.data, 16000) == pytest.approx(1000, abs=2)
    assert rec.sidecar["recorded_rate"] == 44100


def test_numbers_continue_and_nothing_is_overwritten(tmp_path):
    first = voices.save_payload(tmp_path, _payload(_word()))
    before = first.path.read_bytes()
    (tmp_path / "yes" / "blue-fox_yes_2.json").write_text("{}")  # a name someone else took
    second = voices.save_payload(tmp_path, _payload(_word(freq=300)))
    assert second.path.name == "blue-fox_yes_3.wav"
    assert first.path.read_bytes() == before
    assert (tmp_path / "yes" / "blue-fox_yes_2.json").read_text() == "{}"


def test_nothing_is_saved_without_consent(tmp_path):
    with pytest.raises(InputError, match="consent"):
        voices.save_payload(tmp_path, _payload(_word(), consent=False))
    with pytest.raises(InputError, match="consent"):
        voices.save_payload(tmp_path, {k: v for k, v in _payload(_word()).items()
                                       if k != "consent"})
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("change, match", [
    ({"data": "not base64!"}, "base64"),
    ({"data": base64.b64encode(b"abc").decode()}, "whole int16 samples"),
    ({"format": "mp3"}, "sample format"),
    ({"rate": 1000}, "outside"),
    ({"rate": "fast"}, "not a number"),
    ({"label": "../yes"}, "cannot be a folder name"),
    ({"pseudonym": "Ada Lovelace"}, "only letters"),
])
def test_bad_payloads_say_what_is_wrong(tmp_path, change, match):
    with pytest.raises(InputError, match=match):
        voices.save_payload(tmp_path, {**_payload(_word()), **change})
    assert not any(tmp_path.rglob("*.wav"))


def test_too_short_and_broken_payloads_are_refused(tmp_path):
    with pytest.raises(InputError, match="0.10 s long"):
        voices.save_payload(tmp_path, _payload(_word(seconds=0.1)))
    with pytest.raises(InputError, match="lacks rate, data"):
        voices.save_payload(tmp_path, {"pseudonym": "fox", "label": "yes"})
    with pytest.raises(InputError, match="not JSON"):
        voices.save_payload(tmp_path, "{half")


# ---------------------------------------------------------------------------------------------
# Names


@pytest.mark.parametrize("given, stored", [
    ("blue-fox", "blue-fox"), ("Blue-Fox", "blue-fox"), ("  zorro3 ", "zorro3"),
    ("Ärger", "ärger"), ("ねこ", "ねこ"), ("Ko", "ko"),
    ("A\u0308rger", "ärger"),  # NFD (a Mac keyboard) and NFC are one pseudonym
])
def test_pseudonyms_are_normalised(given, stored):
    assert voices.validate_pseudonym(given) == stored


@pytest.mark.parametrize("bad", ["a", "", "Ada Lovelace", "ada_l", "-fox", "fox-", "../x",
                                 "a/b", "x" * 33, "fox!", None])
def test_bad_pseudonyms_are_refused(bad):
    with pytest.raises(InputError, match="pseudonym"):
        voices.validate_pseudonym(bad)


@pytest.mark.parametrize("label", ["yes", "sí", "はい", "turn on", "on_off", "Да"])
def test_labels_in_any_language(label):
    assert voices.validate_label(label) == label


@pytest.mark.parametrize("bad, why", [
    ("", "empty"), ("../yes", "control"), ("a/b", "control"), ("a\\b", "control"),
    ("a:b", "control"), ("CON", "device"), ("nul.txt", "device"), (".hidden", "starts or ends"),
    ("yes.", "starts or ends"), ("tab\there", "control"), ("x" * 41, "longer"),
])
def test_labels_a_file_system_would_refuse(bad, why):
    with pytest.raises(InputError, match=why):
        voices.validate_label(bad)


def test_prompt_lists():
    assert voices.prompt_list(["yes", "sí"]) == {"yes": "yes", "sí": "sí"}
    assert voices.prompt_list({"silence": "(stay quiet)"}) == {"silence": "(stay quiet)"}
    assert set(voices.prompt_list(voices.KWS_PROMPTS)) == set(datasets.info("kws").classes)
    with pytest.raises(InputError, match="twice"):
        voices.prompt_list(["yes", " yes"])
    with pytest.raises(InputError, match="list of words"):
        voices.prompt_list("yes")
    with pytest.raises(InputError, match="empty"):
        voices.prompt_list([])


# ---------------------------------------------------------------------------------------------
# Deleting a speaker


def _folder(root, speakers, labels=("yes", "no"), takes=1):
    for i, who in enumerate(speakers):
        for j, label in enumerate(labels):
            for take in range(takes):
                freq = 200 + 40 * i + 400 * j + 7 * take
                voices.save_clip(root, who, label, _word(freq=freq), BROWSER_RATE, consent=True)
    return root


def test_delete_speaker_removes_only_theirs(tmp_path):
    folder = _folder(tmp_path / "voices", ["fox", "owl"], labels=("yes", "no", "sí"))
    (folder / "up").mkdir()
    only = voices.save_clip(folder, "fox", "up", _word(), BROWSER_RATE, consent=True)
    # A recording of fox's whose sidecar was lost: its name says whose it is.
    (folder / "no" / "fox_no_1.json").unlink()
    deleted = voices.delete_speaker(folder, "FOX")
    assert {p.name for p in deleted} == {"fox_yes_1.wav", "fox_yes_1.json", "fox_no_1.wav",
                                         "fox_sí_1.wav", "fox_sí_1.json", "fox_up_1.wav",
                                         "fox_up_1.json"}
    assert not only.path.parent.exists()  # "up" held only fox's recording
    assert voices.speakers(folder) == {"owl": 3}
    assert voices.delete_speaker(folder, "fox") == []
    with pytest.raises(MissingFileError):
        voices.delete_speaker(tmp_path / "nowhere", "fox")
    with pytest.raises(InputError):
        voices.delete_speaker(folder, "../owl")


def test_delete_keeps_a_speaker_whose_name_starts_like_another(tmp_path):
    folder = _folder(tmp_path / "voices", ["fox", "fox-2"])
    voices.delete_speaker(folder, "fox")
    assert voices.speakers(folder) == {"fox-2": 2}


# ---------------------------------------------------------------------------------------------
# Pack and pool


def test_pack_then_pool_keeps_every_recording_byte_for_byte(tmp_path):
    ana = _folder(tmp_path / "ana", ["ana"], takes=2)
    ben = _folder(tmp_path / "ben", ["ben"])
    packs = [voices.pack(ana, tmp_path / "ana.zip"), voices.pack(ben, tmp_path / "ben.zip")]
    assert [p.recordings for p in packs] == [4, 2] and packs[0].speakers == ("ana",)
    with zipfile.ZipFile(packs[0].path) as zf:
        assert sorted(zf.namelist())[:2] == ["no/ana_no_1.json", "no/ana_no_1.wav"]
    summary = voices.pool([p.path for p in packs], tmp_path / "class")
    assert summary.ok and summary.added == {"ana": 4, "ben": 2}
    for source in (ana, ben):
        for path in source.rglob("*.*"):
            assert (tmp_path / "class" / path.relative_to(source)).read_bytes() == \
                path.read_bytes()


def test_pack_leaves_out_recordings_without_consent(tmp_path):
    folder = _folder(tmp_path / "v", ["ana", "ben"])
    sidecar = folder / "yes" / "ben_yes_1.json"
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "consent": False}))
    packed = voices.pack(folder, tmp_path / "all.zip")
    assert packed.recordings == 3 and len(packed.skipped) == 1
    assert voices.pack(folder, tmp_path / "ana.zip", pseudonym="Ana").recordings == 2
    with pytest.raises(InputError, match="no recordings of 'cat'"):
        voices.pack(folder, tmp_path / "cat.zip", pseudonym="cat")
    with pytest.raises(InputError, match="NAME.zip"):
        voices.pack(folder, tmp_path / "ana.tar")


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _good_members(tmp_path, who="eve"):
    folder = _folder(tmp_path / f"src-{who}", [who], labels=("yes",))
    return {f"yes/{p.name}": p.read_bytes() for p in (folder / "yes").iterdir()}


def _symlink(name, target):
    info = zipfile.ZipInfo(name)
    info.external_attr = (0o120777 << 16)
    return info, target


@pytest.mark.parametrize("evil", [
    "../evil.wav", "yes/../../evil.wav", "/tmp/evil.wav", "C:/evil.wav", "yes\\..\\evil.wav",
    "yes//evil.wav", "a/b/c/d.wav", "yes/evil:stream.wav", "yes/..",
])
def test_a_zip_with_an_unsafe_member_is_refused_whole(tmp_path, evil):
    members = {**_good_members(tmp_path), evil: b"RIFF...."}
    hostile = _zip(tmp_path / "hostile.zip", members)
    good = voices.pack(_folder(tmp_path / "ok", ["ok"]), tmp_path / "ok.zip").path
    out = tmp_path / "deep" / "class"
    summary = voices.pool([hostile, good], out)
    assert list(summary.refused) == ["hostile.zip"] and "nothing of it" in \
        summary.refused["hostile.zip"]
    assert summary.added == {"ok": 2}  # the other zips are still pooled
    assert not summary.ok
    assert voices.speakers(out) == {"ok": 2}
    assert not list(tmp_path.rglob("evil*")) and not list((tmp_path / "deep").glob("*.wav"))


def test_a_symlink_member_is_refused(tmp_path):
    info, target = _symlink("yes/eve_yes_2.wav", "/etc/passwd")
    hostile = tmp_path / "link.zip"
    with zipfile.ZipFile(hostile, "w") as zf:
        for name, data in _good_members(tmp_path).items():
            zf.writestr(name, data)
        zf.writestr(info, target)
    summary = voices.pool([hostile], tmp_path / "class")
    assert "symbolic link" in summary.refused["link.zip"]
    assert voices.speakers(tmp_path / "class") == {}


def test_not_a_zip_is_refused(tmp_path):
    (tmp_path / "fake.zip").write_bytes(b"not a zip")
    summary = voices.pool([tmp_path / "fake.zip"], tmp_path / "class")
    assert "not a readable zip" in summary.refused["fake.zip"]


def test_a_pseudonym_in_two_zips_is_reported_and_pooled_once(tmp_path):
    first = voices.pack(_folder(tmp_path / "a", ["fox"], labels=("yes",)), tmp_path / "a.zip")
    second = voices.pack(_folder(tmp_path / "b", ["fox", "owl"], labels=("yes", "no")),
                         tmp_path / "b.zip")
    out = tmp_path / "class"
    summary = voices.pool([first.path, second.path], out)
    assert summary.duplicates == {"fox": ["a.zip", "b.zip"]}
    assert summary.added == {"fox": 1, "owl": 2}
    kept = (out / "yes" / "fox_yes_1.wav").read_bytes()
    assert kept == (tmp_path / "a" / "yes" / "fox_yes_1.wav").read_bytes()
    assert not (out / "no" / "fox_no_1.wav").exists()
    assert "pseudonym 'fox' comes from a.zip and b.zip" in summary.format()
    # Pooling again: everyone is there already; nothing changes.
    again = voices.pool([second.path], out)
    assert again.added == {} and set(again.duplicates) == {"fox", "owl"}
    assert (out / "yes" / "fox_yes_1.wav").read_bytes() == kept


def test_pool_never_overwrites_a_file_that_is_there(tmp_path):
    pack = voices.pack(_folder(tmp_path / "a", ["owl"]), tmp_path / "owl.zip")
    out = tmp_path / "class"
    (out / "yes").mkdir(parents=True)
    (out / "yes" / "owl_yes_1.wav").write_bytes(b"the instructor's own file")
    summary = voices.pool([pack.path], out)
    assert summary.added == {"owl": 1}
    assert (out / "yes" / "owl_yes_1.wav").read_bytes() == b"the instructor's own file"
    assert not (out / "yes" / "owl_yes_1.json").exists()
    assert any("already in" in s for s in summary.skipped)


def test_pool_skips_recordings_without_consent_or_at_another_rate(tmp_path):
    members = _good_members(tmp_path)
    members["yes/eve_yes_1.json"] = json.dumps({"rate": 16000, "group": "eve"}).encode()
    folder = tmp_path / "loose" / "yes"
    folder.mkdir(parents=True)
    soundfile.write(folder / "x.wav", np.zeros(8000, np.int16), 8000, subtype="PCM_16")
    members["yes/eve_yes_2.wav"] = (folder / "x.wav").read_bytes()
    members["yes/eve_yes_2.json"] = json.dumps({"rate": 8000, "group": "eve",
                                                "consent": True}).encode()
    summary = voices.pool([_zip(tmp_path / "eve.zip", members)], tmp_path / "class")
    assert summary.added == {}
    assert len(summary.skipped) == 2
    assert "no consent" in summary.skipped[0] and "8000 Hz" in summary.skipped[1]


def test_a_folder_zipped_by_the_os_is_pooled(tmp_path):
    members = {f"my-voices/{name}": data for name, data in _good_members(tmp_path).items()}
    members["__MACOSX/my-voices/yes/._eve_yes_1.wav"] = b"finder metadata"
    members["my-voices/.ipynb_checkpoints/x.json"] = b"{}"
    summary = voices.pool([_zip(tmp_path / "os.zip", members)], tmp_path / "class")
    assert summary.ok and summary.added == {"eve": 1}
    assert sorted(p.name for p in (tmp_path / "class").rglob("*")) == [
        "eve_yes_1.json", "eve_yes_1.wav", "yes"]


def test_other_files_in_a_pack_are_left_out_and_named(tmp_path):
    members = {**_good_members(tmp_path), "yes/notes.txt": b"hello"}
    summary = voices.pool([_zip(tmp_path / "eve.zip", members)], tmp_path / "class")
    assert summary.added == {"eve": 1}
    assert summary.skipped == ["eve.zip: yes/notes.txt is neither a recording nor a sidecar"]
    assert not (tmp_path / "class" / "yes" / "notes.txt").exists()


def test_a_pooled_folder_is_split_by_speaker(tmp_path):
    packs = [voices.pack(_folder(tmp_path / who, [who], takes=2), tmp_path / f"{who}.zip").path
             for who in ("ana", "ben", "cai", "dov", "eli", "fay")]
    out = tmp_path / "class"
    assert voices.pool(packs, out).ok
    ds = datasets.load_folder(out, window=16000, sample_rate=16000)
    assert ds.info.classes == ("no", "yes")
    where = {split: set(ds.groups(split).tolist()) for split in datasets.SPLITS}
    assert set().union(*where.values()) == {"ana", "ben", "cai", "dov", "eli", "fay"}
    assert not (where["train"] & where["val"] or where["train"] & where["test"]
                or where["val"] & where["test"])
    for split in datasets.SPLITS:  # each speaker's 4 recordings, whole, in their split
        assert len(ds.split(split)[1]) == 4 * len(where[split])


# ---------------------------------------------------------------------------------------------
# The recorder's Python half


def test_recorder_answers_the_browser(tmp_path):
    rec = Recorder(tmp_path / "v", {"yes": "yes", "sí": "sí (yes)"}, keeper="Ms Diallo")
    assert "Ms Diallo" in rec.notice and "pseudonym" in rec.notice
    assert rec.config()["prompts"] == [["yes", "yes"], ["sí", "sí (yes)"]]
    hello = rec.handle(json.dumps({"seq": 1, "kind": "hello", "pseudonym": "Fox"}))
    assert hello == {"seq": 1, "ok": True, "pseudonym": "fox", "message": "Recording as 'fox'."}
    bad = rec.handle({"seq": 2, "kind": "hello", "pseudonym": "Ada Lovelace"})
    assert bad["seq"] == 2 and not bad["ok"] and "letters" in bad["message"]
    saved = rec.handle({"seq": 3, "kind": "clip", **_payload(_word(), label="sí",
                                                              pseudonym="fox")})
    assert saved["ok"] and saved["file"] == "sí/fox_sí_1.wav" and not saved["quiet"]
    quiet = rec.handle({"seq": 4, "kind": "clip", **_payload(_word(level=0.001),
                                                             pseudonym="fox")})
    assert quiet["ok"] and quiet["quiet"]
    assert "already" in rec.handle({"seq": 5, "kind": "hello", "pseudonym": "fox"})["message"]
    gone = rec.handle({"seq": 6, "kind": "discard", "file": "sí/fox_sí_1.wav"})
    assert gone["ok"] and not (tmp_path / "v" / "sí" / "fox_sí_1.wav").exists()
    assert not (tmp_path / "v" / "sí" / "fox_sí_1.json").exists()
    # Only its own recordings of this session: not another file, not one twice.
    other = voices.save_clip(tmp_path / "v", "owl", "yes", _word(), BROWSER_RATE, consent=True)
    for file in ("sí/fox_sí_1.wav", "yes/owl_yes_1.wav", "../../etc/passwd"):
        assert not rec.handle({"seq": 7, "kind": "discard", "file": file})["ok"]
    assert other.path.exists()
    assert not rec.handle({"seq": 8, "kind": "clip", **_payload(_word(), consent=False)})["ok"]
    assert not rec.handle("{not json")["ok"]
    assert not rec.handle({"seq": 9, "kind": "shout"})["ok"]


def test_recorder_options_are_checked(tmp_path):
    with pytest.raises(InputError, match="repeats"):
        Recorder(tmp_path, ["yes"], repeats=0)
    with pytest.raises(InputError, match="seconds"):
        Recorder(tmp_path, ["yes"], seconds=60)
    with pytest.raises(InputError, match="keep_seconds"):
        Recorder(tmp_path, ["yes"], seconds=0.8)  # shorter than the kept second
    with pytest.raises(InputError, match="folder name"):
        Recorder(tmp_path, ["yes", "no/yes"])


def test_importing_voices_needs_no_widgets_or_tensorflow():
    import subprocess
    import sys

    code = ("import sys, tinyml_edu.voices; "
            "print(sorted(m for m in ('ipywidgets', 'IPython', 'tensorflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------
# Command line


def test_cli_pack_pool_delete(tmp_path, capsys):
    for who in ("ana", "ben"):
        _folder(tmp_path / who, [who])
        assert main(["voices", "pack", str(tmp_path / who), "--out",
                     str(tmp_path / f"{who}.zip")]) == 0
    assert "2 recording(s) of ana" in capsys.readouterr().out
    out = tmp_path / "class"
    assert main(["voices", "pool", str(tmp_path / "ana.zip"), str(tmp_path / "ben.zip"),
                 "--out", str(out)]) == 0
    assert "4 recording(s) of 2 speaker(s)" in capsys.readouterr().out
    assert main(["voices", "pool", str(tmp_path / "ana.zip"), "--out", str(out)]) == 1
    assert main(["voices", "delete", str(out), "ana"]) == 0
    assert "deleted 4 file(s)" in capsys.readouterr().out
    assert voices.speakers(out) == {"ben": 2}
    assert main(["voices", "delete", str(out), "ana"]) == 1
    assert main(["voices", "delete", str(out), "Ada Lovelace"]) == 2


def test_train_needs_silence_and_unknown(tmp_path):
    folder = _folder(tmp_path / "v", ["ana", "ben", "cai"])
    with pytest.raises(InputError, match="no silence or unknown recordings"):
        voices.train_class_model(folder, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_the_shipped_model_hears_clips_saved_through_the_browser_path(tmp_path):
    """Shipped kws test clips, "recorded" at 48 kHz and saved like the recorder's: the shipped
    model still hears them (it scores 80 % on the clips as they are), speaker by speaker."""
    from tinyml_edu import pretrained
    from tinyml_edu.predict import resample

    ds = datasets.load("kws")
    x, y = ds.split("test")
    folder = tmp_path / "class"
    for label in ("silence", "unknown", "yes", "no", "up"):
        clips = x[y == ds.info.classes.index(label)]
        for i in range(3):
            for clip in clips[4 * i:4 * i + 4]:
                voices.save_clip(folder, f"student-{i}", label, resample(clip, 16000, 48000),
                                 BROWSER_RATE, consent=True)
    scores = voices.speaker_scores(pretrained.run_dir("kws"), folder, splits=datasets.SPLITS)
    assert sorted(s.speaker for s in scores) == ["student-0", "student-1", "student-2"]
    assert len({s.split for s in scores}) == 3 and all(s.clips == 20 for s in scores)
    assert sum(s.correct for s in scores) / 60 > 0.6


def test_class_model_report_table(tmp_path):
    held = [voices.SpeakerScore("ana", "test", 10, 9), voices.SpeakerScore("ben", "test", 30, 15)]
    base = [voices.SpeakerScore("ana", "test", 10, 5), voices.SpeakerScore("ben", "test", 30, 30)]
    table = voices.ClassModelReport(tmp_path, tmp_path, held, tmp_path, base).format()
    lines = table.splitlines()
    assert lines[1].split() == ["ana", "10", "90.0%", "50.0%"]
    assert lines[3].split() == ["all", "40", "60.0%", "87.5%"]
    assert "no float Keras model to fine-tune" in table


@pytest.mark.slow
def test_class_model_is_scored_per_held_out_speaker(tmp_path):
    """Five "students" (two clips of each of four kws classes from the shipped set), recorded
    "in the browser" at 48 kHz, trained on and scored per held-out speaker."""
    from tinyml_edu.predict import resample

    ds = datasets.load("kws")
    x, y = ds.split("train")
    classes = ds.info.classes
    folder = tmp_path / "class"
    for label in ("silence", "unknown", "yes", "no"):
        clips = x[y == classes.index(label)]
        for i in range(5):
            for clip in clips[2 * i:2 * i + 2]:
                voices.save_clip(folder, f"student-{i}", label, resample(clip, 16000, 48000),
                                 BROWSER_RATE, consent=True)
    logged = []
    report = voices.train_class_model(folder, tmp_path / "run", base_run=None, progress=False,
                                      log=logged.append)
    test_speakers = set(datasets.load_folder(folder, 16000, sample_rate=16000,
                                             classes=classes).groups("test").tolist())
    assert {s.speaker for s in report.held_out} == test_speakers
    assert all(s.split == "test" and s.clips == 8 for s in report.held_out)
    saved = json.loads((tmp_path / "run" / voices.SPEAKERS_FILE).read_text())
    assert [r["speaker"] for r in saved["held_out"]] == sorted(test_speakers)
    assert "no float Keras model" in saved["how"]
    # The base run's scores on the same speakers: here the run itself, so they agree.
    again = voices.speaker_scores(tmp_path / "run", folder)
    assert again == report.held_out
    run_report = json.loads((tmp_path / "run" / "report.json").read_text())
    overall = sum(s.correct for s in again) / sum(s.clips for s in again)
    assert overall == pytest.approx(run_report["int8_accuracy"])
    assert report.format().splitlines()[-2].split()[-1] == f"{overall:.1%}"
