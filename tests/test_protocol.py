import numpy as np
import pytest

from tinyml_edu import protocol as p


def test_crc_is_ccitt_false():
    assert p.crc16(b"123456789") == 0x29B1  # the standard check value


def test_round_trip_of_every_event_in_arbitrary_pieces():
    audio = np.array([0, 1, -1, 32767, -32768], dtype=np.int16)
    stream = (p.encode_comment("capture_imu 1.0")
              + p.encode_header("virtual", "imu", 100, ["ax", "gx"], ["g", "dps"])
              + p.encode_imu_sample(7, [0.01234, -1.5])
              + p.encode_audio_frame(65537, audio)
              + p.encode_prediction(2, "yes", 0.9512, 3.333)
              + p.encode_keyword(65538, "no", 0.812345, 12250)
              + p.encode_error("no IMU found"))
    for piece in (1, 3, 64, len(stream)):
        parser = p.StreamParser()
        events = [e for i in range(0, len(stream), piece) for e in parser.feed(stream[i:i + piece])]
        kinds = [type(e).__name__ for e in events]
        assert kinds == ["Comment", "Header", "ImuSample", "AudioFrame", "Prediction",
                         "KeywordDetection", "BoardError"]
        assert events[1].columns == ("ax", "gx") and events[1].rate == 100
        assert events[2] == p.ImuSample(7, (0.0123, -1.5))
        assert events[3].seq == 1 and np.array_equal(events[3].samples, audio)
        assert events[4] == p.Prediction(2, "yes", 0.951, 3.33)
        assert events[5] == p.KeywordDetection(2, "no", 0.8123, 12250)


@pytest.mark.parametrize("damage", ["flip", "truncate_checksum", "no_checksum"])
def test_a_damaged_line_is_reported_never_returned_as_data(damage):
    line = p.encode_imu_sample(1, [1.0, 2.0, 3.0]).rstrip(b"\n")
    if damage == "flip":
        line = line.replace(b"2.0000", b"2.0001")
    elif damage == "truncate_checksum":
        line = line[:-1]
    else:
        line = line[:line.rindex(b" *")]
    (event,) = p.StreamParser().feed(line + b"\n")
    assert isinstance(event, p.Corrupted)


def test_damaged_audio_frame_is_dropped_and_the_stream_resynchronises():
    frame = bytearray(p.encode_audio_frame(0, np.arange(100, dtype=np.int16)))
    frame[20] ^= 0xFF
    stream = bytes(frame) + p.encode_imu_sample(1, [0.5])
    events = list(p.StreamParser().feed(stream))
    assert isinstance(events[0], p.Corrupted) and "checksum" in events[0].reason
    assert events[1] == p.ImuSample(1, (0.5,))


def test_garbage_without_line_ends_is_flagged():
    rng = np.random.default_rng(0)
    noise = bytes(b for b in rng.integers(0, 256, 2000, dtype=np.uint8) if b not in (0xA5, 10))
    events = list(p.StreamParser().feed(noise))
    assert events and all(isinstance(e, p.Corrupted) for e in events)


def test_audio_frames_are_limited_in_size():
    with pytest.raises(ValueError, match="at most"):
        p.encode_audio_frame(0, np.zeros(p.MAX_AUDIO_SAMPLES + 1, np.int16))


def test_plain_text_is_told_apart_from_a_damaged_line():
    """A library's own message (TFLM prints with Serial.print) is plain text: never data, but
    worth showing; a data line with a bad checksum stays a damaged line."""
    from tinyml_edu.capture import format_event

    tflm = b"Failed to get registration from op code CONV_2D\n \r\n"
    damaged = p.encode_imu_sample(1, [1.0]).replace(b"1.0000", b"1.0001")
    events = list(p.StreamParser().feed(tflm + damaged))
    assert [e.reason for e in events] == [p.PLAIN_TEXT, "bad or missing checksum"]
    assert events[0].text == "Failed to get registration from op code CONV_2D"
    assert format_event(events[0]) == "(plain text) Failed to get registration from op code CONV_2D"
    assert "skipped" in format_event(events[1])


# ---------------------------------------------------------------------------------------------
# Camera frames


def _picture(height: int, width: int, colour: bool) -> np.ndarray:
    rng = np.random.default_rng(height * 1000 + width)
    shape = (height, width, 3) if colour else (height, width)
    return rng.integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize(("height", "width", "colour"), [
    (240, 320, False), (120, 160, True), (1, 1, True), (96, 96, False), (7, 13, True)])
def test_camera_frame_round_trip_in_arbitrary_pieces(height, width, colour):
    image = _picture(height, width, colour)
    if colour:  # RGB565 keeps the top 5/6/5 bits: compare on values it can hold
        image = image & np.array([0xF8, 0xFC, 0xF8], np.uint8)
        image |= image >> np.array([5, 6, 5], np.uint8)
    frame_bytes = p.encode_camera_frame(65539, image)
    assert len(frame_bytes) == p.camera_frame_size(width, height,
                                                   "rgb565" if colour else "grayscale8")
    stream = p.encode_comment("cam") + frame_bytes + p.encode_error("x")
    for piece in (1, 7, 4096, len(stream)):
        parser = p.StreamParser()
        events = [e for i in range(0, len(stream), piece) for e in parser.feed(stream[i:i + piece])]
        assert [type(e).__name__ for e in events] == ["Comment", "CameraFrame", "BoardError"]
        frame = events[1]
        assert (frame.seq, frame.width, frame.height) == (3, width, height)
        assert frame.pixel_format == ("rgb565" if colour else "grayscale8")
        np.testing.assert_array_equal(frame.image(), image)


def test_rgb565_is_high_byte_first_with_widened_channels():
    pure = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]], np.uint8)
    assert p.rgb_to_rgb565(pure) == bytes.fromhex("f800 07e0 001f ffff")
    assert p.rgb565_to_rgb(bytes.fromhex("0841"), 1, 1).tolist() == [[[8, 8, 8]]]
    np.testing.assert_array_equal(p.rgb565_to_rgb(p.rgb_to_rgb565(pure), 4, 1), pure)


def test_a_damaged_camera_frame_is_skipped_and_the_next_one_is_read():
    first = bytearray(p.encode_camera_frame(0, _picture(120, 160, True)))
    first[5000] ^= 0x10  # one pixel bit
    second = p.encode_camera_frame(1, _picture(120, 160, False))
    events = list(p.StreamParser().feed(bytes(first) + second))
    assert [type(e).__name__ for e in events] == ["Corrupted", "CameraFrame"]
    assert events[0].reason == p.CAMERA_CHECKSUM
    assert events[1].seq == 1 and events[1].pixel_format == "grayscale8"


@pytest.mark.parametrize("damage", ["format", "width", "height"])
def test_a_camera_head_no_camera_sends_is_a_false_sync(damage):
    frame = bytearray(p.encode_camera_frame(0, _picture(8, 8, False)))
    offset = {"format": 9, "width": 5, "height": 7}[damage]
    frame[offset:offset + 2] = b"\x07\x07" if damage == "format" else b"\xff\x7f"
    # The rest of the frame is noise up to the next line end; the line after it is read.
    events = list(p.StreamParser().feed(bytes(frame) + b"\n" + p.encode_imu_sample(4, [0.5])))
    assert isinstance(events[0], p.Corrupted) and "camera frame header" in events[0].reason
    assert events[-1] == p.ImuSample(4, (0.5,))  # resynchronised on the next line


def test_camera_frames_are_limited_to_qvga_and_uint8():
    with pytest.raises(ValueError, match="at most 320x240"):
        p.encode_camera_frame(0, np.zeros((241, 320), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        p.encode_camera_frame(0, np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match="pixel format"):
        p.encode_camera_frame(0, np.zeros((8, 8), np.uint8), "jpeg")
