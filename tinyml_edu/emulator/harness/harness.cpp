// tinyml-edu emulated Cortex-M4 harness: runs the deployed model on test inputs under QEMU.
//
// Built with the exported model array (model_data.cpp), its settings (model_settings.h: the
// sketch's arena size) and a generated op resolver (ops.h, made the way deploy makes the
// sketch's), against Chirale_TensorFlowLite with its CMSIS-NN kernels. Inputs come from the
// host through semihosting: INPUT_FILE holds the int8 input tensors one after the other;
// the output tensors are appended to OUTPUT_FILE. tme_mark() brackets each Invoke() so an
// instruction-counting QEMU plugin can measure it; the first three brackets calibrate: an
// empty one (the bracket's own cost), then loops of TME_LOOP_SHORT and TME_LOOP_LONG
// iterations of two instructions each, so the counts must differ by exactly
// 2 * (TME_LOOP_LONG - TME_LOOP_SHORT).
//
// With TME_AUDIO_INPUT (an audio model, built with firmware/libraries/tinyml_edu_protocol/src),
// INPUT_FILE holds raw int16 clips of FEATURE_CLIP_SAMPLES samples instead: each clip's model
// input is computed on the core by the sketch's own front end (tme_audio_input_setup from
// model_settings.h, tme_audio_input_compute, tme_quantize_int8 with kInputScale and
// kInputZeroPoint, as the sketch's runInference and setInput), written to BOARD_INPUT_FILE,
// and then run; a second pair of marks brackets the front end.
//
// With TME_IMU_INPUT (an IMU model, likewise) INPUT_FILE holds raw float32 windows of
// FEATURE_WINDOW IMU readings (ax, ay, az in g, gx, gy, gz in dps): each reading is scaled on
// the core by the sketch's tme_imu_input_sample (set up by tme_imu_input_setup from
// model_settings.h) and quantized with tme_quantize_int8, as the sketch's pollSensor and
// runInference do; the rest is as for audio.
#include <stdio.h>
#include <string.h>

#include "model_data.h"
#include "model_settings.h"
#include "ops.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"
#if defined(TME_AUDIO_INPUT)
#include <math.h>

#include "tinyml_edu_audio_input.h"
#endif
#if defined(TME_IMU_INPUT)
#include <math.h>

#include "tinyml_edu_imu_input.h"
#endif
#if defined(TME_AUDIO_INPUT) || defined(TME_IMU_INPUT)
#define TME_BOARD_COMPUTES_INPUT 1
#endif

#define TME_LOOP_SHORT 1000
#define TME_LOOP_LONG 3000

extern "C" void DebugLog(const char* s) { fputs(s, stderr); }

extern "C" __attribute__((noinline)) void tme_mark(void) { __asm volatile("" ::: "memory"); }

// n times two instructions (subs + bne), plus the call's fixed cost.
static __attribute__((noinline)) void tme_known_loop(unsigned n) {
  __asm volatile(
      "1: subs %0, %0, #1\n"
      "bne 1b\n"
      : "+r"(n)
      :
      : "cc");
}

alignas(16) static uint8_t g_arena[kTensorArenaSize];
static tflite::MicroMutableOpResolver<TME_OP_COUNT> g_resolver;

#if defined(TME_BOARD_COMPUTES_INPUT)
static FILE* g_board_inputs = nullptr;

// Checks shared by both front ends; 0 when all is well.
static int check_board_input(const TfLiteTensor* input, uint32_t values) {
  if (input->type != kTfLiteInt8 || values != input->bytes) {
    printf("TME ERROR the features make %u values, the int8 input tensor has %u bytes\n",
           (unsigned)values, (unsigned)input->bytes);
    return 6;
  }
  if (fabsf(input->params.scale - kInputScale) > 1e-6f * fabsf(kInputScale)) {
    printf("TME ERROR kInputScale in model_settings.h is not the model's\n");
    return 6;
  }
  g_board_inputs = fopen(TME_BOARD_INPUT_FILE, "wb");
  if (!g_board_inputs) {
    printf("TME ERROR cannot open %s through semihosting\n", TME_BOARD_INPUT_FILE);
    return 4;
  }
  return 0;
}
#endif

#if defined(TME_AUDIO_INPUT)
static tme_audio_input_t g_audio;
static int16_t g_clip[FEATURE_CLIP_SAMPLES];
static float g_features[kTmeAudioInputMax];

// What the sketch checks before its first inference, as a TME ERROR line; 0 when all is well.
static int check_audio_input(const TfLiteTensor* input) {
  const int status = tme_audio_input_setup(&g_audio);
  if (status != TME_DSP_OK) {
    printf("TME ERROR tme_audio_input_setup failed with %d\n", status);
    return 6;
  }
  return check_board_input(input, tme_audio_input_count(&g_audio));
}
#endif

#if defined(TME_IMU_INPUT)
static tme_imu_input_t g_imu;
static float g_window[FEATURE_WINDOW][TME_IMU_RAW_CHANNELS];  // raw readings, oldest first
static float g_row[FEATURE_NUM_CHANNELS];

static int check_imu_input(const TfLiteTensor* input) {
  const int status = tme_imu_input_setup(&g_imu);
  if (status != TME_DSP_OK) {
    printf("TME ERROR tme_imu_input_setup failed with %d\n", status);
    return 6;
  }
  return check_board_input(input, (uint32_t)FEATURE_WINDOW * g_imu.num_channels);
}
#endif

// The next input into the input tensor; false at the end of INPUT_FILE.
static bool next_input(FILE* in, TfLiteTensor* input) {
#if defined(TME_AUDIO_INPUT)
  if (fread(g_clip, sizeof g_clip[0], FEATURE_CLIP_SAMPLES, in) != FEATURE_CLIP_SAMPLES) {
    return false;
  }
  tme_mark();
  tme_audio_input_compute(&g_audio, g_clip, FEATURE_CLIP_SAMPLES, 0, g_features);
  for (size_t i = 0; i < input->bytes; ++i) {
    input->data.int8[i] = tme_quantize_int8(g_features[i], kInputScale, kInputZeroPoint);
  }
  tme_mark();
  fwrite(input->data.raw, 1, input->bytes, g_board_inputs);
  return true;
#elif defined(TME_IMU_INPUT)
  if (fread(g_window, sizeof g_window[0], FEATURE_WINDOW, in) != FEATURE_WINDOW) return false;
  tme_mark();
  int8_t* out = input->data.int8;
  for (int t = 0; t < FEATURE_WINDOW; ++t) {  // one reading at a time, as the sketch scales them
    tme_imu_input_sample(&g_imu, g_window[t], g_row);
    for (uint32_t c = 0; c < g_imu.num_channels; ++c) {
      *out++ = tme_quantize_int8(g_row[c], kInputScale, kInputZeroPoint);
    }
  }
  tme_mark();
  fwrite(input->data.raw, 1, input->bytes, g_board_inputs);
  return true;
#else
  return fread(input->data.raw, 1, input->bytes, in) == input->bytes;
#endif
}

int main(void) {
  tme_mark();
  tme_mark();
  tme_mark();
  tme_known_loop(TME_LOOP_SHORT);
  tme_mark();
  tme_mark();
  tme_known_loop(TME_LOOP_LONG);
  tme_mark();

  TME_REGISTER_OPS(g_resolver);
  const tflite::Model* model = tflite::GetModel(g_model_data);
  tflite::MicroInterpreter interpreter(model, g_resolver, g_arena, kTensorArenaSize);
  if (interpreter.AllocateTensors() != kTfLiteOk) {
    printf("TME ERROR AllocateTensors failed (arena %d bytes)\n", kTensorArenaSize);
    return 3;
  }
  TfLiteTensor* input = interpreter.input(0);
  size_t output_bytes = 0;  // every output: a model rewritten to expose each op's output too
  for (size_t i = 0; i < interpreter.outputs_size(); ++i) {
    output_bytes += interpreter.output(i)->bytes;
  }
#if defined(TME_AUDIO_INPUT)
  const int problem = check_audio_input(input);
  if (problem) return problem;
#elif defined(TME_IMU_INPUT)
  const int problem = check_imu_input(input);
  if (problem) return problem;
#endif
  printf("TME ARENA %u\n", (unsigned)interpreter.arena_used_bytes());
  printf("TME TENSORS %u %u\n", (unsigned)input->bytes, (unsigned)output_bytes);

  FILE* in = fopen(TME_INPUT_FILE, "rb");
  FILE* out = fopen(TME_OUTPUT_FILE, "wb");
  if (!in || !out) {
    printf("TME ERROR cannot open %s or %s through semihosting\n", TME_INPUT_FILE,
           TME_OUTPUT_FILE);
    return 4;
  }
  unsigned count = 0;
  while (next_input(in, input)) {
    tme_mark();
    TfLiteStatus status = interpreter.Invoke();
    tme_mark();
    if (status != kTfLiteOk) {
      printf("TME ERROR Invoke failed on input %u\n", count);
      return 5;
    }
    for (size_t i = 0; i < interpreter.outputs_size(); ++i) {
      fwrite(interpreter.output(i)->data.raw, 1, interpreter.output(i)->bytes, out);
    }
    ++count;
  }
  fclose(out);
  fclose(in);
#if defined(TME_BOARD_COMPUTES_INPUT)
  fclose(g_board_inputs);
#endif
  printf("TME DONE %u\n", count);
  return 0;
}
