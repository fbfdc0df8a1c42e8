/*
 * capture_imu - stream the IMU of an Arduino Nano 33 BLE Sense (Rev1 or Rev2) to
 * `tinyml-edu capture` with the tinyml-edu serial protocol, version 1
 * (docs/serial-protocol.md).
 *
 * One sketch for both revisions: at start-up it looks for the Rev1 IMU (LSM9DS1: I2C address
 * 0x6B on Wire1, WHO_AM_I register 0x0F reads 0x68) and otherwise starts the Rev2 IMU
 * (BMI270 + BMM150) with the Arduino_BMI270_BMM150 library. See tinyml_edu_imu.h.
 *
 *   board:     Arduino Nano 33 BLE Sense Rev1 or Rev2 (FQBN arduino:mbed_nano:nano33ble)
 *   libraries: tinyml_edu_protocol (firmware/libraries), Arduino_BMI270_BMM150
 *   serial:    115200 baud (USB CDC ignores it)
 *
 * On reset and on HELLO: a "# ..." line naming the IMU, then the header. On START: the
 * header, then "D <seq> ax,ay,az,gx,gy,gz *CRC" lines at 100 Hz (g and dps, 4 decimals)
 * until STOP. Samples are paced with micros(), so the rate stays at 100 Hz even though the
 * two IMUs run their own clocks (119 Hz and 100 Hz).
 */
#include <Wire.h>
#include <Arduino_BMI270_BMM150.h>
#include <tinyml_edu_protocol.h>
#include <tinyml_edu_imu.h>

static const char kVersion[] = "tinyml-edu capture_imu 1.0";
static const uint32_t kRateHz = 100;
static const uint32_t kPeriodUs = 1000000UL / kRateHz;

static char g_line[TME_LINE_MAX];
static tme_command_reader_t g_reader;
static bool g_streaming = false;
static uint32_t g_seq = 0;
static uint32_t g_next_us = 0;

static void sendLine(size_t n) {
  if (n > 0) Serial.write(reinterpret_cast<const uint8_t*>(g_line), n);
}

static void sendComment(const char* text) {
  sendLine(tme_format_comment(g_line, sizeof g_line, text));
}

static void sendError(const char* text) {
  sendLine(tme_format_error(g_line, sizeof g_line, text));
}

static void sendHeader() {
  if (tme_imu::detected() == tme_imu::kNone) {
    sendError("no IMU found");
    return;
  }
  sendComment(tme::Text().add(kVersion).add(", IMU: ").add(tme_imu::name()).c_str());
  sendLine(tme_format_header(g_line, sizeof g_line, tme_imu::boardId(), "imu", kRateHz,
                             tme_imu::kColumns, tme_imu::kUnits));
}

static void handleCommand(tme_command_t command) {
  switch (command) {
    case TME_CMD_HELLO:
      sendHeader();
      break;
    case TME_CMD_START:
      sendHeader();
      if (tme_imu::detected() != tme_imu::kNone) {
        g_streaming = true;
        g_seq = 0;
        g_next_us = micros();
      }
      break;
    case TME_CMD_STOP:
      g_streaming = false;
      sendComment("stopped");
      break;
    case TME_CMD_INFER_ON:
    case TME_CMD_INFER_OFF:
      sendComment("capture_imu has no model: INFER is for inference sketches");
      break;
    case TME_CMD_UNKNOWN:
      sendError(tme::Text().add("unknown command: ").add(g_reader.line).c_str());
      break;
    default:
      break;
  }
}

void setup() {
  Serial.begin(TME_BAUD_RATE);
  const uint32_t start = millis();
  while (!Serial && millis() - start < 2000) {
    // USB CDC: give the host up to 2 s to open the port, then run anyway
  }
  tme_command_reader_init(&g_reader);
  tme_imu::begin();
  sendHeader();
}

void loop() {
  while (Serial.available() > 0) {
    handleCommand(tme_command_reader_feed(&g_reader, (uint8_t)Serial.read()));
  }
  if (!g_streaming) return;

  const uint32_t now = micros();
  if ((int32_t)(now - g_next_us) < 0) return;  // not yet time for the next sample

  float v[tme_imu::kChannels];
  if (tme_imu::read(v)) {
    sendLine(tme_format_imu(g_line, sizeof g_line, g_seq, v, tme_imu::kChannels));
  }
  g_seq++;  // a failed read leaves a gap in seq: the host sees a lost sample
  g_next_us += kPeriodUs;
  if ((int32_t)(now - g_next_us) > (int32_t)(10 * kPeriodUs)) {
    // More than 10 samples behind (the host stopped reading?): skip ahead rather than burst,
    // counting the skipped samples in seq so the host sees the gap.
    const uint32_t behind = (now - g_next_us) / kPeriodUs;
    g_seq += behind;
    g_next_us += behind * kPeriodUs;
  }
}
