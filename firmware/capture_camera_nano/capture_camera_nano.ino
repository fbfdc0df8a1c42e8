/*
 * capture_camera_nano - stream the OV7675 camera of the Tiny Machine Learning Kit (on its
 * shield, with an Arduino Nano 33 BLE Sense) to `tinyml-edu capture --sensor camera` as binary
 * camera frames of the tinyml-edu serial protocol, version 1 (docs/serial-protocol.md).
 *
 *   board:     Arduino Nano 33 BLE Sense Rev1 or Rev2 on the Tiny Machine Learning Kit shield
 *              (FQBN arduino:mbed_nano:nano33ble)
 *   libraries: tinyml_edu_protocol (firmware/libraries), Arduino_OV767X
 *   serial:    115200 baud (USB CDC ignores it)
 *
 * On reset and on HELLO: the header (sensor=camera rate=<fps> columns=160x120 units=rgb565).
 * On START: the header, then one frame after the other until STOP; each frame is read whole,
 * then sent, so frames come as fast as the USB line carries them, at most kFps per second.
 *
 * Change the three settings below for another size or format. RAM: the frame buffer is
 * width x height x (2 for RGB565, 1 for GRAYSCALE) bytes: 38,400 for 160x120 RGB565 (the
 * default), 153,600 for QVGA RGB565 (fits, but leaves little of the 256 KB for anything else).
 */
#include <Arduino_OV767X.h>
#include <Wire.h>
#include <tinyml_edu_camera.h>
#include <tinyml_edu_nano33.h>

// The settings: resolution QVGA (320x240), QCIF (176x144) or QQVGA (160x120); format RGB565
// or GRAYSCALE; frame rate 1 or 5 (the only ones the library supports on the Nano 33 BLE).
#define CAMERA_RESOLUTION QQVGA
#define CAMERA_FORMAT RGB565
#define CAMERA_FPS 5

static const uint32_t kWidth = CAMERA_RESOLUTION == QVGA ? 320 : CAMERA_RESOLUTION == QCIF ? 176
                                                                                       : 160;
static const uint32_t kHeight = CAMERA_RESOLUTION == QVGA ? 240 : CAMERA_RESOLUTION == QCIF ? 144
                                                                                        : 120;
static const uint8_t kFormat = CAMERA_FORMAT == GRAYSCALE ? TME_PIXEL_GRAYSCALE8 : TME_PIXEL_RGB565;
static const uint32_t kFps = CAMERA_FPS;

static uint8_t g_pixels[TME_CAMERA_PIXEL_BYTES(kWidth, kHeight, kFormat)];
static char g_line[TME_LINE_MAX];
static tme_command_reader_t g_reader;
static const char* g_board = "nano33ble_sense_rev1";
static bool g_camera_ok = false;
static bool g_streaming = false;
static uint32_t g_seq = 0;

static void sendLine(size_t n) {
  if (n > 0) Serial.write(reinterpret_cast<const uint8_t*>(g_line), n);
}

static void sendHeader() {
  if (!g_camera_ok) {
    sendLine(tme_format_error(g_line, sizeof g_line,
                              "OV7675 camera did not start (is the Tiny ML Kit shield attached "
                              "and the camera seated?)"));
    return;
  }
  sendLine(tme_format_comment(g_line, sizeof g_line,
                              "tinyml-edu capture_camera_nano 1.0, OV7675 camera"));
  tme::sendCameraHeader(Serial, g_line, g_board, kFps, kWidth, kHeight, kFormat);
}

static void handleCommand(tme_command_t command) {
  switch (command) {
    case TME_CMD_HELLO:
      sendHeader();
      break;
    case TME_CMD_START:
      sendHeader();
      if (g_camera_ok) {
        g_streaming = true;
        g_seq = 0;
      }
      break;
    case TME_CMD_STOP:
      g_streaming = false;
      sendLine(tme_format_comment(g_line, sizeof g_line, "stopped"));
      break;
    case TME_CMD_INFER_ON:
    case TME_CMD_INFER_OFF:
      sendLine(tme_format_comment(g_line, sizeof g_line,
                                  "capture_camera_nano has no model: INFER is for inference "
                                  "sketches"));
      break;
    case TME_CMD_UNKNOWN:
      sendLine(tme_format_error(g_line, sizeof g_line, "unknown command"));
      break;
    default:
      break;
  }
}

void setup() {
  Serial.begin(TME_BAUD_RATE);
  const uint32_t start = millis();
  while (!Serial && millis() - start < 2000) {
  }
  tme_command_reader_init(&g_reader);
  g_board = tme_nano33::boardId();  // Rev1 has an LSM9DS1 on Wire1; the camera is on Wire
  g_camera_ok = Camera.begin(CAMERA_RESOLUTION, CAMERA_FORMAT, CAMERA_FPS, OV7675) != 0;
  sendHeader();
}

void loop() {
  while (Serial.available() > 0) {
    handleCommand(tme_command_reader_feed(&g_reader, (uint8_t)Serial.read()));
  }
  if (!g_streaming) return;
  // readFrame waits for the next whole frame with interrupts off; commands wait meanwhile
  // (they are read between frames, which is soon enough for STOP).
  Camera.readFrame(g_pixels);
  tme::sendCameraFrame(Serial, g_seq++, kWidth, kHeight, kFormat, g_pixels);
}
