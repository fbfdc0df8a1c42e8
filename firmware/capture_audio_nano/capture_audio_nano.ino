/*
 * capture_audio_nano - stream the PDM microphone of an Arduino Nano 33 BLE Sense (Rev1:
 * MP34DT05, Rev2: MP34DT06JTR) to `tinyml-edu capture` as binary audio frames of the
 * tinyml-edu serial protocol, version 1 (docs/serial-protocol.md).
 *
 *   board:     Arduino Nano 33 BLE Sense Rev1 or Rev2 (FQBN arduino:mbed_nano:nano33ble)
 *   libraries: tinyml_edu_protocol (firmware/libraries); PDM comes with the mbed_nano core
 *   serial:    115200 baud (USB CDC ignores it); 16 kHz x 16 bit = 32 kB/s of frames
 *
 * On reset and on HELLO: the header (sensor=audio rate=16000 columns=mic units=int16). On
 * START: the header, then one frame of kFrameSamples samples every 32 ms until STOP.
 *
 * Double buffering: the PDM callback runs in interrupt context and must never wait. It
 * fills one of two buffers; a full buffer is handed to loop() and the callback carries on
 * in the other. If loop() has not sent the previous buffer yet (the host stopped reading),
 * the new one is dropped and its seq number skipped, so the host sees the gap.
 */
#include <PDM.h>
#include <Wire.h>
#include <tinyml_edu_protocol.h>
#include <tinyml_edu_nano33.h>

static const uint32_t kSampleRate = 16000;
static const size_t kFrameSamples = 512;  // 32 ms; the protocol allows up to 1024

static char g_line[TME_LINE_MAX];
static uint8_t g_frame[TME_AUDIO_FRAME_BYTES(kFrameSamples)];
static tme_command_reader_t g_reader;
static const char* g_board = "nano33ble_sense_rev1";
static bool g_mic_ok = false;

// Shared with the PDM interrupt.
static int16_t g_buffers[2][kFrameSamples];
static volatile uint8_t g_fill = 0;         // buffer the interrupt is filling
static volatile size_t g_fill_count = 0;    // samples in it so far
static volatile bool g_ready = false;       // the other buffer is full and waits for loop()
static volatile uint16_t g_ready_seq = 0;   // its seq number
static volatile uint32_t g_capture_seq = 0; // frames captured (sent or dropped)
static volatile uint32_t g_dropped = 0;
static volatile bool g_streaming = false;

static void onPdmData() {
  int bytes = PDM.available();
  while (bytes >= 2) {
    int16_t* buffer = g_buffers[g_fill];
    size_t room = (kFrameSamples - g_fill_count) * 2;
    size_t chunk = (size_t)bytes < room ? (size_t)bytes : room;
    chunk &= ~(size_t)1;
    PDM.read(buffer + g_fill_count, chunk);
    g_fill_count += chunk / 2;
    bytes -= (int)chunk;
    if (g_fill_count < kFrameSamples) continue;
    g_fill_count = 0;
    if (!g_streaming) continue;  // keep the microphone running, throw the audio away
    if (!g_ready) {
      g_ready_seq = (uint16_t)g_capture_seq;
      g_ready = true;
      g_fill ^= 1;  // carry on in the other buffer
    } else {
      g_dropped++;  // loop() is behind: overwrite this buffer, leave a gap in seq
    }
    g_capture_seq++;
  }
}

static void sendLine(size_t n) {
  if (n > 0) Serial.write(reinterpret_cast<const uint8_t*>(g_line), n);
}

static void sendHeader() {
  if (!g_mic_ok) {
    sendLine(tme_format_error(g_line, sizeof g_line, "PDM microphone did not start"));
    return;
  }
  sendLine(tme_format_comment(g_line, sizeof g_line,
                              "tinyml-edu capture_audio_nano 1.0, PDM microphone 16 kHz"));
  sendLine(tme_format_header(g_line, sizeof g_line, g_board, "audio", kSampleRate, "mic",
                             "int16"));
}

static void handleCommand(tme_command_t command) {
  switch (command) {
    case TME_CMD_HELLO:
      sendHeader();
      break;
    case TME_CMD_START:
      sendHeader();
      if (g_mic_ok) {
        noInterrupts();
        g_fill_count = 0;
        g_ready = false;
        g_capture_seq = 0;
        g_dropped = 0;
        g_streaming = true;
        interrupts();
      }
      break;
    case TME_CMD_STOP:
      g_streaming = false;
      sendLine(tme_format_comment(g_line, sizeof g_line, "stopped"));
      break;
    case TME_CMD_INFER_ON:
    case TME_CMD_INFER_OFF:
      sendLine(tme_format_comment(g_line, sizeof g_line,
                                  "capture_audio_nano has no model: INFER is for inference "
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
  g_board = tme_nano33::boardId();  // Rev1 has an LSM9DS1 at 0x6B, Rev2 does not
  PDM.onReceive(onPdmData);
  g_mic_ok = PDM.begin(1, kSampleRate) != 0;  // mono, 16 kHz
  sendHeader();
}

void loop() {
  while (Serial.available() > 0) {
    handleCommand(tme_command_reader_feed(&g_reader, (uint8_t)Serial.read()));
  }
  if (!g_ready) return;
  // The full buffer is the one the interrupt is not filling; it stays untouched until
  // g_ready is cleared, so it can be read without blocking the interrupt.
  const uint8_t full = g_fill ^ 1;
  const size_t n = tme_format_audio_frame(g_frame, sizeof g_frame, g_ready_seq,
                                          g_buffers[full], kFrameSamples);
  g_ready = false;  // hand the buffer back before the (slower) USB write
  if (g_streaming && n > 0) Serial.write(g_frame, n);
}
