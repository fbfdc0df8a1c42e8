import pytest

from tinyml_edu.boards import BOARDS, get_board


def test_catalog_has_the_kit_boards_with_datasheet_facts():
    rev1, rev2 = BOARDS["nano33ble_sense_rev1"], BOARDS["nano33ble_sense_rev2"]
    assert rev1.ram_bytes == rev2.ram_bytes == 256 * 1024
    assert rev1.flash_bytes == 1024 * 1024 and rev1.clock_hz == 64_000_000
    assert any("LSM9DS1" in s for s in rev1.sensors)
    assert any("BMI270" in s for s in rev2.sensors)
    assert not any("LSM9DS1" in s for s in rev2.sensors)
    assert BOARDS["xiao_esp32s3_sense"].fqbn == "esp32:esp32:XIAO_ESP32S3"
    assert {"pico", "virtual"} <= set(BOARDS)


def test_runtime_reservations_leave_room_for_a_model():
    for board in BOARDS.values():
        assert 0 < board.runtime_ram_bytes < board.ram_bytes / 2
        assert 0 < board.runtime_flash_bytes < board.flash_bytes / 2


def test_unknown_board_lists_known_ones():
    with pytest.raises(KeyError, match="known boards: .*nano33ble_sense_rev2"):
        get_board("uno")
