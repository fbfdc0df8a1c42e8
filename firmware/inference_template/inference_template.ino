/*
 * tinyml-edu inference sketch - the template that `tinyml-edu deploy` fills in.
 *
 * deploy copies this file into a sketch folder next to the model_data.h, model_data.cpp and
 * model_settings.h that the export stage wrote, with the tinyml_edu_protocol sources in the
 * sketch's src/ folder (included with quotes, so the folder compiles on its own and cannot
 * clash with an installed copy of the library), and replaces five placeholders (each written
 * as its NAME in double curly braces): PROJECT, BOARD_ID and SENSOR in the three defines just
 * below, OP_COUNT in the op resolver's type and OP_RESOLVER_ADDS, on its own line inside
 * registerOps(). firmware/README.md lists them.
 *
 * What it does, by SENSOR:
 *   imu   - Nano 33 BLE Sense Rev1 or Rev2 (IMU detected at start-up, as in capture_imu):
 *           samples at FEATURE_SAMPLE_RATE, keeps the last FEATURE_WINDOW samples, divides
 *           accelerometer channels by FEATURE_ACCEL_RANGE_G and gyroscope channels by
 *           FEATURE_GYRO_RANGE_DPS clipped to [-1, 1] (features.scale_imu; a derived
 *           "amag" channel when FEATURE_DERIVED_CHANNELS names it: tme_imu_input_sample of
 *           tinyml_edu_dsp.h, set up by tinyml_edu_imu_input.h), and runs the model every
 *           FEATURE_STRIDE samples.
 *   audio - PDM microphone (Nano: PDM library; XIAO ESP32S3 Sense: ESP_I2S, core 3.x) at
 *           16 kHz, decimated to FEATURE_SAMPLE_RATE when that is lower; keeps the last
 *           FEATURE_CLIP_SAMPLES samples and about every 250 ms (LISTEN_HOP_MS when
 *           model_settings.h gives it) computes the log-mel (or MFCC) features of features.py
 *           (tinyml_edu_dsp.h), normalised as in training (tinyml_edu_audio_input.h), and runs
 *           the model. A keyword model (LISTEN_* settings) also feeds every inference's scores
 *           to the posterior smoother of tinyml_edu.listen (tinyml_edu_listen.h) and prints
 *           "K <seq> <label> <score> <time_ms> *CRC" for each keyword it detects, time_ms
 *           counted in samples from start-up.
 *   camera - the OV7675 of the Tiny Machine Learning Kit (Nano 33 BLE Sense on its shield,
 *           library Arduino_OV767X): reads CAMERA_WIDTH x CAMERA_HEIGHT frames (160 x 120
 *           grayscale, the one picture the sketch holds: the frame buffer the fit table
 *           counts) and brings each to the model exactly as tinyml_edu.camera_input does on
 *           the host (tinyml_edu_camera_input.h: grayscale, the centred square, Pillow's
 *           bilinear resize to FEATURE_FRAME x FEATURE_FRAME, pixel / 255, quantized) straight
 *           into the model's input. A classifier prints the top label; a counting model
 *           (CAMERA_COUNT_CELLS > 0: FOMO, cars) prints "P <seq> <n>_cars <lowest probability
 *           among them> <ms>" and then "C <seq> <n> <row>,<col> ..." with the centres of the
 *           cells it counted, in pixels of the model's frame. START streams the frames too
 *           (each frame, then its P line).
 *   none  - the hello-world sine demo: feeds x sweeping 0..2*pi and reports y = model(x).
 *   other - a model whose features the board does not compute yet (e.g. wingbeats, ecg):
 *           the model is loaded, run once on zeros (its Invoke() time is reported) and the
 *           board reports an E line saying that its features are missing.
 * Every inference prints "P <seq> <label> <score> <ms> *CRC": the top label, its score (the
 * dequantized output) and the time Invoke() took. The sine demo reports the same way with
 * the label "y" and the predicted value as the score (so it can be negative).
 *
 * Commands (docs/serial-protocol.md): HELLO -> header; START -> header, then raw sensor data
 * (D lines, audio or camera frames) until STOP; INFER ON / INFER OFF -> P lines on/off (on at
 * reset).
 *
 * TensorFlow Lite for Microcontrollers: the official Arduino_TensorFlowLite library was
 * removed from the Library Manager, so this sketch targets libraries a class can install
 * from it today:
 *   Nano 33 BLE Sense (arduino:mbed_nano) - "Chirale_TensorFlowLite": <Chirale_TensorFlowLite.h>
 *   XIAO ESP32S3 Sense (esp32:esp32)      - "TensorFlowLite_ESP32":   <TensorFlowLite_ESP32.h>
 * both followed by "tensorflow/lite/micro/micro_interpreter.h",
 * "tensorflow/lite/micro/micro_mutable_op_resolver.h" and
 * "tensorflow/lite/schema/schema_generated.h". TensorFlowLite_ESP32 carries an older TFLM
 * whose MicroInterpreter still takes an ErrorReporter; the sketch detects that by its
 * "tensorflow/lite/micro/micro_error_reporter.h". Chirale_TensorFlowLite also supports
 * ESP32: define TINYML_EDU_USE_CHIRALE below to use it on the XIAO too.
 */

// ---- filled in by tinyml-edu deploy ---------------------------------------------------------
#define TINYML_EDU_PROJECT "{{PROJECT}}"
#define TINYML_EDU_BOARD_ID "{{BOARD_ID}}"
#define TINYML_EDU_SENSOR_{{SENSOR}} 1
// ----------------------------------------------------------------------------------------------

// #define TINYML_EDU_USE_CHIRALE 1  // XIAO: use Chirale_TensorFlowLite instead

#if defined(TINYML_EDU_SENSOR_imu)
#define TINYML_EDU_SENSOR_NAME "imu"
#elif defined(TINYML_EDU_SENSOR_audio)
#define TINYML_EDU_SENSOR_NAME "audio"
#elif defined(TINYML_EDU_SENSOR_camera)
#define TINYML_EDU_SENSOR_NAME "camera"
#elif defined(TINYML_EDU_SENSOR_none)
#define TINYML_EDU_SENSOR_NAME "none"
#elif defined(TINYML_EDU_SENSOR_other)
#define TINYML_EDU_SENSOR_NAME "other"
#else
#error "the sensor must be imu, audio, camera, none or other"
#endif
#if defined(TINYML_EDU_SENSOR_imu) || defined(TINYML_EDU_SENSOR_audio) || \
    defined(TINYML_EDU_SENSOR_camera)
#define TINYML_EDU_CLASSIFIER 1  // streams raw sensor data and reports the top label
#endif

#include <math.h>
#include <string.h>

#include "src/tinyml_edu_dsp.h"  // tme_quantize_int8 for every model; the audio front end
#include "src/tinyml_edu_protocol.h"

#if defined(TINYML_EDU_SENSOR_imu)
#if !defined(ARDUINO_ARCH_MBED)
#error "sensor imu needs a Nano 33 BLE Sense (Rev1 or Rev2); the XIAO ESP32S3 has no IMU"
#endif
#include <Wire.h>
#include <Arduino_BMI270_BMM150.h>
#include "src/tinyml_edu_imu.h"
#elif defined(TINYML_EDU_SENSOR_audio)
#if defined(ARDUINO_ARCH_ESP32)
#include <ESP_I2S.h>  // ESP32 Arduino core 3.x; core 2.x had I2S.h, removed in 3.x
#else
#include <PDM.h>
#include <Wire.h>
#include "src/tinyml_edu_nano33.h"
#endif
#elif defined(TINYML_EDU_SENSOR_camera)
#if !defined(ARDUINO_ARCH_MBED)
#error "sensor camera needs a Nano 33 BLE Sense on the Tiny Machine Learning Kit shield (OV7675)"
#endif
#include <Arduino_OV767X.h>
#include <Wire.h>
#include "src/tinyml_edu_camera.h"
#include "src/tinyml_edu_nano33.h"
#endif

#if defined(ARDUINO_ARCH_ESP32) && !defined(TINYML_EDU_USE_CHIRALE)
#include <TensorFlowLite_ESP32.h>
#else
#include <Chirale_TensorFlowLite.h>
#endif
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"
#if defined(__has_include)
#if __has_include("tensorflow/lite/micro/micro_error_reporter.h")
#include "tensorflow/lite/micro/micro_error_reporter.h"
#define TINYML_EDU_TFLM_NEEDS_ERROR_REPORTER 1
#endif
#endif

#include "model_data.h"
#include "model_settings.h"
#if defined(TINYML_EDU_SENSOR_audio)
#include "src/tinyml_edu_audio_input.h"  // after model_settings.h: sized from its FEATURE_*
#elif defined(TINYML_EDU_SENSOR_imu)
#include "src/tinyml_edu_imu_input.h"  // after model_settings.h: set up from its FEATURE_*
#elif defined(TINYML_EDU_SENSOR_camera)
#include "src/tinyml_edu_camera_input.h"  // after model_settings.h: from its CAMERA_*
#endif

#if defined(TINYML_EDU_SENSOR_audio) && defined(LISTEN_HOP_MS)
#define TINYML_EDU_LISTEN 1  // a keyword model: smooth the scores, report keywords (K lines)
#include "src/tinyml_edu_listen.h"
#endif

// ============================================================================================
// Model

static tflite::MicroMutableOpResolver<{{OP_COUNT}}> op_resolver;
alignas(16) static uint8_t g_tensor_arena[kTensorArenaSize];
static tflite::MicroInterpreter* g_interpreter = nullptr;
static TfLiteTensor* g_input = nullptr;
static TfLiteTensor* g_output = nullptr;
static bool g_model_ok = false;
static bool g_infer = true;  // an inference sketch starts with inference on
#if !defined(TINYML_EDU_SENSOR_other)
static uint32_t g_prediction_seq = 0;
#endif

static char g_line[TME_LINE_MAX];
static tme_command_reader_t g_reader;
static bool g_streaming = false;
#if defined(TINYML_EDU_CLASSIFIER)
static uint32_t g_data_seq = 0;
#endif
static const char* g_board = TINYML_EDU_BOARD_ID;

static void sendLine(size_t n) {
  if (n > 0) Serial.write(reinterpret_cast<const uint8_t*>(g_line), n);
}

static void sendComment(const char* text) {
  sendLine(tme_format_comment(g_line, sizeof g_line, text));
}

static void sendError(const char* text) {
  sendLine(tme_format_error(g_line, sizeof g_line, text));
}

static void registerOps() {
{{OP_RESOLVER_ADDS}}
}

#if !defined(TINYML_EDU_SENSOR_camera)  // a camera model's input: tme_camera_input_int8
// The int8 value of x: round(x / kInputScale) + kInputZeroPoint, halves away from zero as
// TFLite's quantize kernel does (and tinyml_edu.runtime.quantize_input).
static void setInput(size_t i, float x) {
  if (g_input->type == kTfLiteInt8) {
    g_input->data.int8[i] = tme_quantize_int8(x, kInputScale, kInputZeroPoint);
  } else {
    g_input->data.f[i] = x;
  }
}
#endif

static size_t inputCount() {
  return g_input->type == kTfLiteInt8 ? g_input->bytes : g_input->bytes / sizeof(float);
}

#if !defined(TINYML_EDU_SENSOR_other)
static float outputValue(size_t i) {
  if (g_output->type == kTfLiteInt8) {
    return (g_output->data.int8[i] - g_output->params.zero_point) * g_output->params.scale;
  }
  return g_output->data.f[i];
}
#endif

static const size_t kAnyInputCount = 0;  // expectedInputs() when the sketch cannot know

static bool setupModel(size_t expected_inputs) {
  registerOps();
  const tflite::Model* model = tflite::GetModel(g_model_data);
#if defined(TFLITE_SCHEMA_VERSION)
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    sendError(tme::Text()
                  .add("model schema version ")
                  .add((uint32_t)model->version())
                  .add(" but the TFLM library reads version ")
                  .add((uint32_t)TFLITE_SCHEMA_VERSION)
                  .c_str());
    return false;
  }
#endif
#if defined(TINYML_EDU_TFLM_NEEDS_ERROR_REPORTER)
  static tflite::MicroErrorReporter error_reporter;
  static tflite::MicroInterpreter interpreter(model, op_resolver, g_tensor_arena,
                                              kTensorArenaSize, &error_reporter);
#else
  static tflite::MicroInterpreter interpreter(model, op_resolver, g_tensor_arena,
                                              kTensorArenaSize);
#endif
  g_interpreter = &interpreter;
  if (g_interpreter->AllocateTensors() != kTfLiteOk) {
    sendError(tme::Text()
                  .add("AllocateTensors() failed: raise kTensorArenaSize in model_settings.h "
                       "(now ")
                  .add((uint32_t)kTensorArenaSize)
                  .add(" bytes), or an op of the model is not registered")
                  .c_str());
    return false;
  }
  g_input = g_interpreter->input(0);
  g_output = g_interpreter->output(0);
  if (g_input->type != kTfLiteInt8 && g_input->type != kTfLiteFloat32) {
    sendError("the model input is neither int8 nor float32");
    return false;
  }
  if (g_output->type != kTfLiteInt8 && g_output->type != kTfLiteFloat32) {
    sendError("the model output is neither int8 nor float32");
    return false;
  }
  if (expected_inputs != kAnyInputCount && inputCount() != expected_inputs) {
    sendError(tme::Text()
                  .add("the model takes ")
                  .add((uint32_t)inputCount())
                  .add(" input values but the features in model_settings.h make ")
                  .add((uint32_t)expected_inputs)
                  .c_str());
    return false;
  }
  if (g_input->type == kTfLiteInt8 &&
      fabsf(g_input->params.scale - kInputScale) > 1e-6f * fabsf(kInputScale)) {
    sendError("kInputScale in model_settings.h is not the model's: were both files exported "
              "together?");
  }
  tme::Text note;
  note.add("model ready: ")
      .add((uint32_t)g_model_data_len)
      .add(" bytes, arena ")
      .add((uint32_t)g_interpreter->arena_used_bytes())
      .add(" of ")
      .add((uint32_t)kTensorArenaSize)
      .add(" bytes used");
  sendComment(note.c_str());
  return true;
}

// Runs the model on the input already set; returns the time Invoke() took in ms, or a
// negative value on failure.
static float invokeTimed() {
  const uint32_t t0 = micros();
  const TfLiteStatus status = g_interpreter->Invoke();
  const uint32_t t1 = micros();
  if (status != kTfLiteOk) {
    sendError("Invoke() failed");
    return -1.0f;
  }
  return (float)(t1 - t0) / 1000.0f;
}

#if defined(TINYML_EDU_CLASSIFIER)
static size_t outputCount() {
  return g_output->type == kTfLiteInt8 ? g_output->bytes : g_output->bytes / sizeof(float);
}

// Classifiers: the top label and its dequantized score.
static void reportTopLabel(float ms) {
  size_t count = outputCount();
  if (count > (size_t)kCategoryCount) count = (size_t)kCategoryCount;
  size_t top = 0;
  for (size_t i = 1; i < count; ++i) {
    if (outputValue(i) > outputValue(top)) top = i;
  }
  sendLine(tme_format_prediction(g_line, sizeof g_line, g_prediction_seq++,
                                 kCategoryLabels[top], outputValue(top), ms));
}
#endif

// ============================================================================================
// Sensor: imu

#if defined(TINYML_EDU_SENSOR_imu)

static const int kWindow = FEATURE_WINDOW;
static const int kStride = FEATURE_STRIDE;
static const int kChannels = FEATURE_NUM_CHANNELS;
static const uint32_t kRateHz = FEATURE_SAMPLE_RATE;
static const uint32_t kPeriodUs = 1000000UL / FEATURE_SAMPLE_RATE;
#if FEATURE_SAMPLE_RATE > 100
#warning "the Rev2 IMU runs at 100 Hz: a higher FEATURE_SAMPLE_RATE repeats samples there"
#endif

static float g_window[kWindow][kChannels];  // scaled samples, a ring
static int g_window_pos = 0;                // next slot to write = oldest sample
static int g_until_invoke = kWindow;        // samples until the next inference
static uint32_t g_next_us = 0;
// Channel order (FEATURE_CHANNELS, then a derived "amag"), full scales and clipping, set up
// from model_settings.h (src/tinyml_edu_imu_input.h): the code `tinyml-edu verify --on
// cortex-m4` runs on the emulated Cortex-M4 and compares with the host's features.
static tme_imu_input_t g_imu_input;
static_assert(tme_imu::kChannels == TME_IMU_RAW_CHANNELS, "one IMU reading: a, then g");
static bool g_imu_input_ok = false;

static void sendHeader() {
  if (tme_imu::detected() == tme_imu::kNone) {
    sendError("no IMU found");
    return;
  }
  sendComment(tme::Text()
                  .add("tinyml-edu inference ")
                  .add(TINYML_EDU_PROJECT)
                  .add(", IMU: ")
                  .add(tme_imu::name())
                  .c_str());
  sendLine(tme_format_header(g_line, sizeof g_line, g_board, "imu", kRateHz, tme_imu::kColumns,
                             tme_imu::kUnits));
}

static void runInference() {
  for (int t = 0; t < kWindow; ++t) {  // oldest sample first, as in training windows
    const float* row = g_window[(g_window_pos + t) % kWindow];
    for (int c = 0; c < kChannels; ++c) setInput((size_t)(t * kChannels + c), row[c]);
  }
  const float ms = invokeTimed();
  if (ms >= 0.0f) reportTopLabel(ms);
}

static void setupSensor() {
  tme_imu::begin();
  if (tme_imu::detected() == tme_imu::kNone) return;
  if (strcmp(g_board, tme_imu::boardId()) != 0) {
    sendComment(tme::Text()
                    .add("deployed for ")
                    .add(TINYML_EDU_BOARD_ID)
                    .add(", running on ")
                    .add(tme_imu::boardId())
                    .c_str());
    g_board = tme_imu::boardId();
  }
  g_imu_input_ok = tme_imu_input_setup(&g_imu_input) == TME_DSP_OK;
  if (!g_imu_input_ok) {
    sendError("FEATURE_CHANNELS, FEATURE_DERIVED_CHANNELS or the full scales in "
              "model_settings.h are not understood: update the tinyml_edu_protocol sources");
  }
  g_next_us = micros();
}

static size_t expectedInputs() {
  return (size_t)kWindow * (size_t)kChannels;
}

static void startStreaming() {
  g_data_seq = 0;
  g_streaming = tme_imu::detected() != tme_imu::kNone;
}

static void pollSensor() {
  if (tme_imu::detected() == tme_imu::kNone) return;
  const uint32_t now = micros();
  if ((int32_t)(now - g_next_us) < 0) return;
  g_next_us += kPeriodUs;
  if ((int32_t)(now - g_next_us) > (int32_t)(10 * kPeriodUs)) g_next_us = now + kPeriodUs;

  float v[tme_imu::kChannels];
  if (!tme_imu::read(v)) return;
  if (g_streaming) {
    sendLine(tme_format_imu(g_line, sizeof g_line, g_data_seq++, v, tme_imu::kChannels));
  }
  if (!g_imu_input_ok) return;
  tme_imu_input_sample(&g_imu_input, v, g_window[g_window_pos]);
  g_window_pos = (g_window_pos + 1) % kWindow;
  if (--g_until_invoke > 0) return;
  g_until_invoke = kStride;
  if (g_infer && g_model_ok) runInference();
}

#endif  // TINYML_EDU_SENSOR_imu

// ============================================================================================
// Sensor: audio

#if defined(TINYML_EDU_SENSOR_audio)

static const uint32_t kMicRate = 16000;  // what both PDM microphones are run at
#if FEATURE_SAMPLE_RATE > 16000 || (16000 % FEATURE_SAMPLE_RATE) != 0
#error "FEATURE_SAMPLE_RATE must divide 16000 (e.g. 16000 or 8000): the microphone runs at 16 kHz"
#endif
static const uint32_t kDecimation = kMicRate / FEATURE_SAMPLE_RATE;
static const uint32_t kClip = FEATURE_CLIP_SAMPLES;
#if defined(TINYML_EDU_LISTEN)
// Every LISTEN_HOP_MS, in samples as on the host (tinyml_edu.listen: rate * hop_ms // 1000).
static const uint32_t kHop = (uint32_t)FEATURE_SAMPLE_RATE * (uint32_t)LISTEN_HOP_MS / 1000u;
#if FEATURE_SAMPLE_RATE * LISTEN_HOP_MS < 1000
#error "LISTEN_HOP_MS is shorter than one sample"
#endif
#else
static const uint32_t kHop = FEATURE_SAMPLE_RATE / 4;  // about every 250 ms
#endif
static const size_t kStreamSamples = 512;

// Microphone -> loop(): 0.5 s of 16 kHz audio, so a slow inference does not lose audio.
static int16_t g_raw_storage[8192];
static tme_ring16_t g_raw;

// The last kClip samples at FEATURE_SAMPLE_RATE.
static int16_t g_clip[kClip];
static uint32_t g_clip_pos = 0;  // next write = oldest sample once full
static uint32_t g_until_invoke = kClip;

static float g_taps[TME_DECIMATOR_TAPS(kDecimation)];
static float g_history[TME_DECIMATOR_TAPS(kDecimation)];
static tme_decimator_t g_decimator;

// The log-mel (or MFCC) front end and the training normalisation, set up from
// model_settings.h (src/tinyml_edu_audio_input.h): the code `tinyml-edu verify --on
// cortex-m4` runs on the emulated Cortex-M4 and compares with the host's features.
static tme_audio_input_t g_audio;
static float g_features[kTmeAudioInputMax];

static int16_t g_stream[kStreamSamples];
static size_t g_stream_count = 0;
static uint8_t g_frame[TME_AUDIO_FRAME_BYTES(kStreamSamples)];
static uint32_t g_reported_drops = 0;
static uint32_t g_last_drop_report_ms = 0;

#if defined(TINYML_EDU_LISTEN)
static tme_smoother_t g_smoother;
static bool g_listen_ok = false;
static uint32_t g_keyword_seq = 0;
// The time of an inference, counted in samples (not millis(): the host's `tinyml-edu listen`
// then gives the same times on a recording): whole seconds, and samples into the next one.
static uint32_t g_clock_seconds = 0;
static uint32_t g_clock_samples = 0;

static void tickListenClock() {
  if (++g_clock_samples == FEATURE_SAMPLE_RATE) {
    g_clock_samples = 0;
    ++g_clock_seconds;
  }
}

// samples * 1000 / rate, without 64-bit arithmetic; wraps after 49 days (the smoother then
// starts afresh).
static uint32_t listenTimeMs() {
  return g_clock_seconds * 1000u + g_clock_samples * 1000u / FEATURE_SAMPLE_RATE;
}

static void setupListening() {
  tme_listen_params_t params;
  params.average_window_ms = LISTEN_AVERAGE_WINDOW_MS;
  params.min_count = LISTEN_MIN_COUNT;
  params.threshold = LISTEN_THRESHOLD;
  params.suppression_ms = LISTEN_SUPPRESSION_MS;
  g_listen_ok = tme_smoother_init(&g_smoother, &params, kListenIsKeyword,
                                  (uint32_t)kCategoryCount) == TME_LISTEN_OK;
  if (!g_listen_ok) sendError("the LISTEN_* settings in model_settings.h are not usable");
}

// After each inference: its scores into the smoother; a detection becomes a K line.
static void listenToScores() {
  if (!g_listen_ok) return;
  float scores[kCategoryCount];
  const size_t count = outputCount();
  for (size_t i = 0; i < (size_t)kCategoryCount; ++i) {
    scores[i] = i < count ? outputValue(i) : 0.0f;
  }
  const uint32_t time_ms = listenTimeMs();
  double average = 0.0;
  const int heard = tme_smoother_update(&g_smoother, time_ms, scores, &average);
  if (heard < 0) return;
  sendLine(tme_format_keyword(g_line, sizeof g_line, g_keyword_seq++, kCategoryLabels[heard],
                              average, time_ms));
}
#endif

#if defined(ARDUINO_ARCH_ESP32)
static I2SClass g_i2s;
static bool g_mic_ok = false;

// A FreeRTOS task on the other core moves audio from the I2S DMA buffers into g_raw.
static void micTask(void*) {
  static int16_t block[256];
  for (;;) {
    const size_t got = g_i2s.readBytes(reinterpret_cast<char*>(block), sizeof block);
    tme_ring16_write(&g_raw, block, (uint32_t)(got / sizeof(int16_t)));
  }
}

static bool startMicrophone() {
  g_i2s.setPinsPdmRx(42, 41);  // XIAO ESP32S3 Sense: PDM clock GPIO 42, data GPIO 41
  if (!g_i2s.begin(I2S_MODE_PDM_RX, kMicRate, I2S_DATA_BIT_WIDTH_16BIT, I2S_SLOT_MODE_MONO)) {
    return false;
  }
  xTaskCreatePinnedToCore(micTask, "tme_mic", 4096, nullptr, 5, nullptr, 0);
  return true;
}
#else
static bool g_mic_ok = false;

// PDM interrupt -> g_raw; never waits (a full ring drops and counts samples).
static void onPdmData() {
  static int16_t block[256];
  int bytes = PDM.available();
  while (bytes >= 2) {
    int chunk = bytes < (int)sizeof block ? bytes : (int)sizeof block;
    chunk &= ~1;
    PDM.read(block, chunk);
    tme_ring16_write(&g_raw, block, (uint32_t)chunk / 2);
    bytes -= chunk;
  }
}

static bool startMicrophone() {
  PDM.onReceive(onPdmData);
  return PDM.begin(1, kMicRate) != 0;
}
#endif

static void sendHeader() {
  if (!g_mic_ok) {
    sendError("PDM microphone did not start");
    return;
  }
  sendComment(tme::Text()
                  .add("tinyml-edu inference ")
                  .add(TINYML_EDU_PROJECT)
                  .add(", PDM microphone, features ")
                  .add(FEATURE_KIND)
                  .c_str());
  sendLine(tme_format_header(g_line, sizeof g_line, g_board, "audio", FEATURE_SAMPLE_RATE,
                             "mic", "int16"));
}

static void runInference() {
  // The clip starts at its oldest sample. With FEATURE_NORM "clip_mean" (kws) the mean of the
  // whole clip's features is subtracted (loudness and microphone gain drop out), then the
  // values are multiplied by FEATURE_INPUT_SCALE.
  tme_audio_input_compute(&g_audio, g_clip, kClip, g_clip_pos, g_features);
  const uint32_t n = tme_audio_input_count(&g_audio);
  for (uint32_t i = 0; i < n; ++i) setInput(i, g_features[i]);
  const float ms = invokeTimed();
  if (ms < 0.0f) return;
  reportTopLabel(ms);
#if defined(TINYML_EDU_LISTEN)
  listenToScores();
#endif
}

static void setupSensor() {
#if !defined(ARDUINO_ARCH_ESP32)
  g_board = tme_nano33::boardId();  // Rev1 has an LSM9DS1 at 0x6B, Rev2 does not
#endif
  tme_ring16_init(&g_raw, g_raw_storage, sizeof g_raw_storage / sizeof g_raw_storage[0]);
  tme_decimator_init(&g_decimator, g_taps, g_history, TME_DECIMATOR_TAPS(kDecimation),
                     kDecimation);
  const int status = tme_audio_input_setup(&g_audio);
  if (status == TME_DSP_BAD_NORM) {
    sendError("FEATURE_NORM in model_settings.h is not one this library knows: update it");
  } else if (status != TME_DSP_OK) {
    sendError("the mel filterbank settings in model_settings.h are not usable");
  }
#if defined(TINYML_EDU_LISTEN)
  setupListening();
#endif
  g_mic_ok = startMicrophone();
}

static size_t expectedInputs() {
  return (size_t)tme_audio_input_count(&g_audio);
}

static void startStreaming() {
  g_data_seq = 0;
  g_stream_count = 0;
  g_streaming = g_mic_ok;
}

static void pollSensor() {
  int16_t block[128];
  uint32_t n;
  // Only what is there now: if inference were slower than real time, draining "until empty"
  // would never return to loop() and commands would go unanswered.
  uint32_t budget = tme_ring16_available(&g_raw);
  while (budget > 0 && (n = tme_ring16_read(&g_raw, block, budget < 128 ? budget : 128)) > 0) {
    budget -= n;
    for (uint32_t i = 0; i < n; ++i) {
      int16_t sample;
      if (!tme_decimator_push(&g_decimator, block[i], &sample)) continue;
      g_clip[g_clip_pos] = sample;
      g_clip_pos = (g_clip_pos + 1 == kClip) ? 0 : g_clip_pos + 1;
#if defined(TINYML_EDU_LISTEN)
      tickListenClock();
#endif
      if (g_streaming) {
        g_stream[g_stream_count++] = sample;
        if (g_stream_count == kStreamSamples) {
          const size_t bytes = tme_format_audio_frame(g_frame, sizeof g_frame, g_data_seq++,
                                                      g_stream, kStreamSamples);
          if (bytes > 0) Serial.write(g_frame, bytes);
          g_stream_count = 0;
        }
      }
      if (--g_until_invoke > 0) continue;
      g_until_invoke = kHop;
      if (g_infer && g_model_ok) runInference();
    }
  }
  const uint32_t dropped = g_raw.dropped;
  if (dropped != g_reported_drops && millis() - g_last_drop_report_ms > 5000) {
    g_reported_drops = dropped;  // at most one note every 5 s
    g_last_drop_report_ms = millis();
    sendComment("audio overrun: inference is slower than real time, samples were dropped");
  }
}

#endif  // TINYML_EDU_SENSOR_audio

// ============================================================================================
// Sensor: camera

#if defined(TINYML_EDU_SENSOR_camera)

static_assert((CAMERA_WIDTH == 160 && CAMERA_HEIGHT == 120) ||
                  (CAMERA_WIDTH == 176 && CAMERA_HEIGHT == 144) ||
                  (CAMERA_WIDTH == 320 && CAMERA_HEIGHT == 240),
              "CAMERA_WIDTH x CAMERA_HEIGHT: 160x120 (QQVGA), 176x144 (QCIF) or 320x240 (QVGA)");
static_assert(TME_CAMERA_INPUT_FRAME_BYTES == CAMERA_FRAME_BUFFER_BYTES,
              "the camera frame is the frame buffer the fit table counts");
static const uint32_t kCameraWidth = CAMERA_WIDTH;
static const uint32_t kCameraHeight = CAMERA_HEIGHT;
static const uint8_t kCameraFormat = TME_CAMERA_INPUT_FORMAT;
static const int kCameraResolution =
    CAMERA_WIDTH == 320 ? QVGA : (CAMERA_WIDTH == 176 ? QCIF : QQVGA);
static const uint32_t kCountCells = CAMERA_COUNT_CELLS;  // 0: the model classifies the frame
static const uint32_t kGrid = kCountCells > 0 ? kCountCells : 1;  // never a zero divisor
static const size_t kCells = (size_t)kGrid * kGrid;

// The one picture the sketch holds: the model's frame is computed from it straight into the
// model's input tensor.
static uint8_t g_camera_frame[TME_CAMERA_INPUT_FRAME_BYTES];
static tme_camera_input_t g_camera_input;
static bool g_camera_ok = false;
static bool g_camera_input_ok = false;
// Counting: each cell's probability of the last class, the peaks, their centres (row, col).
static float g_heat[kCells];
static uint8_t g_peaks[kCells];
static uint16_t g_centres[2 * kCells];

static void sendHeader() {
  if (!g_camera_ok) {
    sendError("OV7675 camera did not start (is the Tiny ML Kit shield attached and the camera "
              "seated?)");
    return;
  }
  sendComment(tme::Text()
                  .add("tinyml-edu inference ")
                  .add(TINYML_EDU_PROJECT)
                  .add(", OV7675 camera, model frame ")
                  .add((uint32_t)FEATURE_FRAME)
                  .add("x")
                  .add((uint32_t)FEATURE_FRAME)
                  .add(" from the centred square")
                  .c_str());
  tme::sendCameraHeader(Serial, g_line, g_board, CAMERA_FPS, kCameraWidth, kCameraHeight,
                        kCameraFormat);
}

// Counting models (FOMO): the cells whose probability of the last class (e.g. "car") is above
// CAMERA_PEAK_THRESHOLD and the highest around them (tme_image_peaks, as cars.local_peaks).
// "P <seq> <n>_cars <the lowest probability among them> <ms>", then their centres.
static void reportCount(float ms) {
  const size_t cells = kCells;
  const size_t classes = outputCount() / cells;
  if (classes < 1 || classes * cells != outputCount()) {
    sendError("the model's output is not CAMERA_COUNT_CELLS x CAMERA_COUNT_CELLS cells");
    return;
  }
  for (size_t i = 0; i < cells; ++i) g_heat[i] = outputValue(i * classes + classes - 1);
  const uint32_t n = tme_image_peaks(g_heat, kGrid, kGrid, CAMERA_PEAK_THRESHOLD, g_peaks);
  float lowest = 0.0f;
  size_t found = 0;
  for (size_t i = 0; i < cells; ++i) {
    if (!g_peaks[i]) continue;
    if (found == 0 || g_heat[i] < lowest) lowest = g_heat[i];
    const uint32_t row = (uint32_t)(i / kGrid), col = (uint32_t)(i % kGrid);
    g_centres[2 * found] = (uint16_t)((2 * row + 1) * FEATURE_FRAME / (2 * kGrid));
    g_centres[2 * found + 1] = (uint16_t)((2 * col + 1) * FEATURE_FRAME / (2 * kGrid));
    ++found;
  }
  tme::Text label;  // "3 cars": the P line writes it as 3_cars
  label.add(n).add(" ").add(kCategoryLabels[kCategoryCount - 1]).add(n == 1 ? "" : "s");
  const uint32_t seq = g_prediction_seq++;
  sendLine(tme_format_prediction(g_line, sizeof g_line, seq, label.c_str(), lowest, ms));
  sendLine(tme_format_centroids(g_line, sizeof g_line, seq, g_centres, found));
}

static void runInference() {
  if (g_input->type == kTfLiteInt8) {
    tme_camera_input_int8(&g_camera_input, g_camera_frame, g_input->data.int8);
  } else {
    tme_image_model_input_float(&g_camera_input.image, g_camera_frame, g_input->data.f);
  }
  const float ms = invokeTimed();
  if (ms < 0.0f) return;
  if (kCountCells > 0) {
    reportCount(ms);
  } else {
    reportTopLabel(ms);
  }
}

static void setupSensor() {
  g_board = tme_nano33::boardId();  // Rev1 has an LSM9DS1 on Wire1; the camera is on Wire
  const int status = tme_camera_input_setup(&g_camera_input, kInputScale, kInputZeroPoint);
  g_camera_input_ok = status == TME_IMAGE_OK;
  if (status == TME_IMAGE_BAD_SCALE) {
    sendError("FEATURE_SCALE in model_settings.h is not 1/255: the sketch feeds pixel / 255");
  } else if (!g_camera_input_ok) {
    sendError("the CAMERA_* and FEATURE_FRAME settings in model_settings.h are not usable");
  }
  g_camera_ok = Camera.begin(kCameraResolution, CAMERA_GRAYSCALE ? GRAYSCALE : RGB565,
                             CAMERA_FPS, OV7675) != 0;
}

static size_t expectedInputs() {
  return (size_t)TME_CAMERA_INPUT_PIXELS;
}

static void startStreaming() {
  g_data_seq = 0;
  g_streaming = g_camera_ok;
}

static void pollSensor() {
  const bool infer = g_infer && g_model_ok && g_camera_input_ok;
  if (!g_camera_ok || (!g_streaming && !infer)) return;
  // readFrame waits for the next whole frame with interrupts off (at most 1 / CAMERA_FPS s);
  // commands are read between frames, which is soon enough for STOP.
  Camera.readFrame(g_camera_frame);
  if (g_streaming) {
    tme::sendCameraFrame(Serial, g_data_seq++, kCameraWidth, kCameraHeight, kCameraFormat,
                         g_camera_frame);
  }
  if (infer) runInference();
}

#endif  // TINYML_EDU_SENSOR_camera

// ============================================================================================
// Sensor: none - the hello-world sine demo

#if defined(TINYML_EDU_SENSOR_none)

static const int kInferencesPerCycle = 100;  // x steps through 0..2*pi in 100 steps
static const uint32_t kPeriodMs = 20;        // one inference every 20 ms: a 2 s sine cycle
static int g_step = 0;
static uint32_t g_next_ms = 0;

static void sendHeader() {
  sendComment(tme::Text()
                  .add("tinyml-edu inference ")
                  .add(TINYML_EDU_PROJECT)
                  .add(", sine demo: P lines report label y and score = predicted sin(x)")
                  .c_str());
  sendLine(tme_format_header(g_line, sizeof g_line, g_board, "none", 0, "x", "rad"));
}

static void setupSensor() {
  g_next_ms = millis();
}

static size_t expectedInputs() {
  return 1;
}

static void startStreaming() {
  sendComment("the sine demo has no sensor to stream; its P lines are its output");
}

static void pollSensor() {
  if (!g_infer || !g_model_ok) return;
  const uint32_t now = millis();
  if ((int32_t)(now - g_next_ms) < 0) return;
  g_next_ms = now + kPeriodMs;
  const float x = 6.2831853f * (float)g_step / (float)kInferencesPerCycle;
  g_step = (g_step + 1) % kInferencesPerCycle;
  setInput(0, x);
  const float ms = invokeTimed();
  if (ms < 0.0f) return;
  // The sine demo is a regression: the "label" is y and the "score" the predicted value.
  sendLine(tme_format_prediction(g_line, sizeof g_line, g_prediction_seq++, "y", outputValue(0),
                                 ms));
}

#endif  // TINYML_EDU_SENSOR_none

// ============================================================================================
// Sensor: other - a model whose features this sketch does not compute yet (hand-made feature
// vectors such as wingbeats' harmonic levels or ecg's beat intervals). The model is loaded
// and checked, and the board says what is missing instead of running on wrong inputs.

#if defined(TINYML_EDU_SENSOR_other)

static void sendHeader() {
  sendComment(tme::Text()
                  .add("tinyml-edu inference ")
                  .add(TINYML_EDU_PROJECT)
                  .add(": no on-board features")
                  .c_str());
  sendLine(tme_format_header(g_line, sizeof g_line, g_board, "none", 0, "x", "none"));
  sendError(tme::Text()
                .add("this sketch does not compute the features of ")
                .add(TINYML_EDU_PROJECT)
                .add(" yet; run it on the virtual board: tinyml-edu deploy ... --port virtual")
                .c_str());
}

static void setupSensor() {}

static size_t expectedInputs() {
  return kAnyInputCount;
}

static void startStreaming() {
  sendComment("no sensor to stream for this model");
}

// Once, after start-up: the model on all-zero input, to show that it runs and how fast.
static void pollSensor() {
  static bool timed = false;
  if (timed || !g_model_ok) return;
  timed = true;
  for (size_t i = 0; i < inputCount(); ++i) setInput(i, 0.0f);
  const float ms = invokeTimed();
  if (ms < 0.0f) return;
  sendComment(tme::Text()
                  .add("Invoke() on all-zero input took ")
                  .add((uint32_t)(ms * 1000.0f))
                  .add(" us")
                  .c_str());
}

#endif  // TINYML_EDU_SENSOR_other

// ============================================================================================
// Commands, setup, loop

static void handleCommand(tme_command_t command) {
  switch (command) {
    case TME_CMD_HELLO:
      sendHeader();
      break;
    case TME_CMD_START:
      sendHeader();
      startStreaming();
      break;
    case TME_CMD_STOP:
      g_streaming = false;
      sendComment("stopped");
      break;
    case TME_CMD_INFER_ON:
#if defined(TINYML_EDU_LISTEN)
      if (!g_infer) tme_smoother_reset(&g_smoother);  // a fresh start after a pause
#endif
      g_infer = true;
      if (g_model_ok) {
        sendComment("inference on");
      } else {
        sendError("inference unavailable: the model did not load");
      }
      break;
    case TME_CMD_INFER_OFF:
      g_infer = false;
      sendComment("inference off");
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
    delay(10);  // USB CDC: give the host up to 2 s to open the port, then run anyway
  }
  tme_command_reader_init(&g_reader);
  setupSensor();
  sendHeader();
  g_model_ok = setupModel(expectedInputs());
}

void loop() {
  while (Serial.available() > 0) {
    handleCommand(tme_command_reader_feed(&g_reader, (uint8_t)Serial.read()));
  }
  pollSensor();
}
