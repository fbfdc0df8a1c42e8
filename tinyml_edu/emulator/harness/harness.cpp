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
#include <stdio.h>
#include <string.h>

#include "model_data.h"
#include "model_settings.h"
#include "ops.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

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
  while (fread(input->data.raw, 1, input->bytes, in) == input->bytes) {
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
  printf("TME DONE %u\n", count);
  return 0;
}
