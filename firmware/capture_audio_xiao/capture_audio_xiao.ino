/*
 * capture_audio_xiao - stream the PDM microphone of a Seeed Studio XIAO ESP32S3 Sense to
 * `tinyml-edu capture` as binary audio frames of the tinyml-edu serial protocol, version 1
 * (docs/serial-protocol.md).
 *
 *   board:     Seeed Studio XIAO ESP32S3 Sense (FQBN esp32:esp32:XIAO_ESP32S3), with the
 *              camera/microphone expansion board plugged in
 *   core:      esp32:esp32 version 3.x (Espressif's Arduino core)
 *   libraries: tinyml_edu_protocol (firmware/libraries); ESP_I2S comes with the core
 *   pins:      PDM clock GPIO 42, PDM data GPIO 41
 *   serial:    USB CDC ("USB CDC On Boot: Enabled", the XIAO_ESP32S3 default)
 *
 * ESP32 Arduino core 3.x REMOVED the old `I2S.h` API of core 2.x (I2S.setAllPins(...),
 * I2S.begin(PDM_MONO_MODE, 16000, 16)) - which is why many course sketches and tutorials
 * written for 2.x no longer compile. This sketch uses the 3.x `ESP_I2S.h` API instead:
 * I2SClass, setPinsPdmRx(clk, data), begin(I2S_MODE_PDM_RX, rate, bits, slot mode).
 *
 * On reset and on HELLO: the header (sensor=audio rate=16000 columns=mic units=int16). On
 * START: the header, then one frame of kFrameSamples samples every 32 ms until STOP. The
 * I2S driver fills DMA buffers in the background, so loop() just reads a frame, sends it
 * and reads the next.
 */
#include <ESP_I2S.h>
#include <tinyml_edu_protocol.h>

#if !defined(ESP_ARDUINO_VERSION_MAJOR) || ESP_ARDUINO_VERSION_MAJOR < 3
#error "capture_audio_xiao needs the ESP32 Arduino core 3.x (ESP_I2S.h); core 2.x had I2S.h"
#endif

static const uint32_t kSampleRate = 16000;
static const size_t kFrameSamples = 512;  // 32 ms; the protocol allows up to 1024
static const int8_t kPdmClockPin = 42;
static const int8_t kPdmDataPin = 41;

static I2SClass g_i2s;
static char g_line[TME_LINE_MAX];
static uint8_t g_frame[TME_AUDIO_FRAME_BYTES(kFrameSamples)];
static int16_t g_samples[kFrameSamples];
static size_t g_have = 0;  // samples of the current frame read so far
static tme_command_reader_t g_reader;
static bool g_mic_ok = false;
static bool g_streaming = false;
static uint32_t g_seq = 0;

static void sendLine(size_t n) {
  if (n > 0) Serial.write(reinterpret_cast<const uint8_t*>(g_line), n);
}

static void sendHeader() {
  if (!g_mic_ok) {
    sendLine(tme_format_error(g_line, sizeof g_line,
                              "PDM microphone did not start (is the Sense board attached?)"));
    return;
  }
  sendLine(tme_format_comment(g_line, sizeof g_line,
                              "tinyml-edu capture_audio_xiao 1.0, PDM microphone 16 kHz"));
  sendLine(tme_format_header(g_line, sizeof g_line, "xiao_esp32s3_sense", "audio", kSampleRate,
                             "mic", "int16"));
}

static void handleCommand(tme_command_t command) {
  switch (command) {
    case TME_CMD_HELLO:
      sendHeader();
      break;
    case TME_CMD_START:
      sendHeader();
      if (g_mic_ok) {
        g_streaming = true;
        g_seq = 0;
        g_have = 0;
      }
      break;
    case TME_CMD_STOP:
      g_streaming = false;
      sendLine(tme_format_comment(g_line, sizeof g_line, "stopped"));
      break;
    case TME_CMD_INFER_ON:
    case TME_CMD_INFER_OFF:
      sendLine(tme_format_comment(g_line, sizeof g_line,
                                  "capture_audio_xiao has no model: INFER is for inference "
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
  g_i2s.setPinsPdmRx(kPdmClockPin, kPdmDataPin);
  g_mic_ok = g_i2s.begin(I2S_MODE_PDM_RX, kSampleRate, I2S_DATA_BIT_WIDTH_16BIT,
                         I2S_SLOT_MODE_MONO);
  sendHeader();
}

void loop() {
  while (Serial.available() > 0) {
    handleCommand(tme_command_reader_feed(&g_reader, (uint8_t)Serial.read()));
  }
  if (!g_mic_ok) {
    delay(10);
    return;
  }
  // Read what the DMA buffers hold (at most the rest of this frame); keep reading even when
  // not streaming so the driver's buffers never overflow into stale audio.
  const size_t want = (kFrameSamples - g_have) * sizeof(int16_t);
  const size_t got = g_i2s.readBytes(reinterpret_cast<char*>(g_samples + g_have), want);
  g_have += got / sizeof(int16_t);
  if (g_have < kFrameSamples) return;
  g_have = 0;
  if (!g_streaming) return;
  const size_t n =
      tme_format_audio_frame(g_frame, sizeof g_frame, g_seq++, g_samples, kFrameSamples);
  if (n > 0) Serial.write(g_frame, n);
}
