/*
 * capture_camera_xiao - stream the OV2640 camera of a Seeed Studio XIAO ESP32S3 Sense to
 * `tinyml-edu capture --sensor camera` as binary camera frames of the tinyml-edu serial
 * protocol, version 1 (docs/serial-protocol.md).
 *
 *   board:     Seeed Studio XIAO ESP32S3 Sense (FQBN esp32:esp32:XIAO_ESP32S3), with the
 *              camera/microphone expansion board plugged in; Tools > PSRAM: "OPI PSRAM"
 *   core:      esp32:esp32 version 3.x (Espressif's Arduino core; esp_camera comes with it)
 *   libraries: tinyml_edu_protocol (firmware/libraries)
 *   serial:    USB CDC ("USB CDC On Boot: Enabled", the XIAO_ESP32S3 default)
 *
 * On reset and on HELLO: the header (sensor=camera rate=<fps> columns=160x120 units=rgb565).
 * On START: the header, then one frame every 1/kFps s (or slower, as fast as USB carries
 * them) until STOP. The frames are made by tinyml_edu_camera.h, the same code as the Nano's
 * capture_camera_nano, so the bytes on the line are the same for the same picture.
 *
 * Change the settings below for another size or format: FRAMESIZE_QVGA (320x240),
 * FRAMESIZE_QQVGA (160x120) or FRAMESIZE_96X96; PIXFORMAT_RGB565 or PIXFORMAT_GRAYSCALE.
 * Frames larger than QVGA are not part of the protocol.
 */
#include <esp_camera.h>
#include <tinyml_edu_camera.h>

#if !defined(ESP_ARDUINO_VERSION_MAJOR) || ESP_ARDUINO_VERSION_MAJOR < 3
#error "capture_camera_xiao is written for the ESP32 Arduino core 3.x"
#endif

static const framesize_t kFrameSize = FRAMESIZE_QQVGA;
static const pixformat_t kPixelFormat = PIXFORMAT_RGB565;
static const uint32_t kFps = 5;

// The XIAO ESP32S3 Sense camera connector (Seeed's pin map).
static const int kPinXclk = 10, kPinSiod = 40, kPinSioc = 39, kPinVsync = 38, kPinHref = 47,
                 kPinPclk = 13;
static const int kPinData[8] = {15, 17, 18, 16, 14, 12, 11, 48};  // D0 (Y2) .. D7 (Y9)

static char g_line[TME_LINE_MAX];
static tme_command_reader_t g_reader;
static bool g_camera_ok = false;
static bool g_streaming = false;
static uint32_t g_seq = 0;
static uint32_t g_width = 0, g_height = 0;
static uint32_t g_next_ms = 0;
static const uint8_t kFormat =
    kPixelFormat == PIXFORMAT_GRAYSCALE ? TME_PIXEL_GRAYSCALE8 : TME_PIXEL_RGB565;

static void sendLine(size_t n) {
  if (n > 0) Serial.write(reinterpret_cast<const uint8_t*>(g_line), n);
}

static bool startCamera() {
  camera_config_t config = {};
  config.ledc_channel = LEDC_CHANNEL_0;
  config.ledc_timer = LEDC_TIMER_0;
  config.pin_d0 = kPinData[0];
  config.pin_d1 = kPinData[1];
  config.pin_d2 = kPinData[2];
  config.pin_d3 = kPinData[3];
  config.pin_d4 = kPinData[4];
  config.pin_d5 = kPinData[5];
  config.pin_d6 = kPinData[6];
  config.pin_d7 = kPinData[7];
  config.pin_xclk = kPinXclk;
  config.pin_pclk = kPinPclk;
  config.pin_vsync = kPinVsync;
  config.pin_href = kPinHref;
  config.pin_sccb_sda = kPinSiod;
  config.pin_sccb_scl = kPinSioc;
  config.pin_pwdn = -1;
  config.pin_reset = -1;
  config.xclk_freq_hz = 20000000;
  config.pixel_format = kPixelFormat;
  config.frame_size = kFrameSize;
  config.fb_count = 2;
  config.fb_location = psramFound() ? CAMERA_FB_IN_PSRAM : CAMERA_FB_IN_DRAM;
  config.grab_mode = CAMERA_GRAB_LATEST;  // the newest frame, not one that waited in a buffer
  if (esp_camera_init(&config) != ESP_OK) return false;
  // One frame tells the size the driver really gives.
  camera_fb_t* fb = esp_camera_fb_get();
  if (fb == nullptr) return false;
  g_width = fb->width;
  g_height = fb->height;
  esp_camera_fb_return(fb);
  return tme_camera_frame_ok(g_width, g_height, kFormat) != 0;
}

static void sendHeader() {
  if (!g_camera_ok) {
    sendLine(tme_format_error(g_line, sizeof g_line,
                              "OV2640 camera did not start (is the Sense board attached, PSRAM "
                              "on, and the frame size QVGA or smaller?)"));
    return;
  }
  sendLine(tme_format_comment(g_line, sizeof g_line,
                              "tinyml-edu capture_camera_xiao 1.0, OV2640 camera"));
  tme::sendCameraHeader(Serial, g_line, "xiao_esp32s3_sense", kFps, g_width, g_height, kFormat);
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
        g_next_ms = millis();
      }
      break;
    case TME_CMD_STOP:
      g_streaming = false;
      sendLine(tme_format_comment(g_line, sizeof g_line, "stopped"));
      break;
    case TME_CMD_INFER_ON:
    case TME_CMD_INFER_OFF:
      sendLine(tme_format_comment(g_line, sizeof g_line,
                                  "capture_camera_xiao has no model: INFER is for inference "
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
    delay(10);
  }
  tme_command_reader_init(&g_reader);
  g_camera_ok = startCamera();
  sendHeader();
}

void loop() {
  while (Serial.available() > 0) {
    handleCommand(tme_command_reader_feed(&g_reader, (uint8_t)Serial.read()));
  }
  if (!g_streaming || (int32_t)(millis() - g_next_ms) < 0) {
    delay(1);
    return;
  }
  g_next_ms += 1000 / kFps;
  camera_fb_t* fb = esp_camera_fb_get();
  if (fb == nullptr) {
    sendLine(tme_format_error(g_line, sizeof g_line, "camera gave no frame"));
    return;
  }
  // A frame of another size than announced would be read wrongly: the head says its size.
  if (fb->len == TME_CAMERA_PIXEL_BYTES(fb->width, fb->height, kFormat)) {
    tme::sendCameraFrame(Serial, g_seq++, fb->width, fb->height, kFormat, fb->buf);
  } else {
    g_seq++;  // the host sees a lost frame
  }
  esp_camera_fb_return(fb);
  // Behind by more than a frame (slow USB): start the clock again rather than burst.
  if ((int32_t)(millis() - g_next_ms) > (int32_t)(1000 / kFps)) g_next_ms = millis();
}
