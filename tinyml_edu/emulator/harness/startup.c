/* Start-up for QEMU's mps2-an386: the vector table and a reset handler that turns the FPU on
 * (the code is built for an FPv4 core, and even newlib's start-up may use FPU registers),
 * copies .data, clears .bss, opens the semihosting files, runs constructors, then main. */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t __stack_top, __data_load, __data_start, __data_end, __bss_start__, __bss_end__;
extern int main(void);
extern void __libc_init_array(void);
extern void initialise_monitor_handles(void);

void tme_reset(void) __attribute__((noreturn, naked));
static void tme_fault(void) __attribute__((noreturn));
void tme_start(void) __attribute__((noreturn));

__attribute__((section(".vectors"), used)) static void (*const tme_vectors[16])(void) = {
    (void (*)(void))&__stack_top, tme_reset, tme_fault, tme_fault, tme_fault, tme_fault,
    tme_fault, 0, 0, 0, 0, tme_fault, tme_fault, 0, tme_fault, tme_fault,
};

void tme_reset(void) {
  /* CPACR: full access to coprocessors 10 and 11 (the FPU), before any FPU instruction. */
  __asm volatile(
      "ldr r0, =0xE000ED88\n"
      "ldr r1, [r0]\n"
      "orr r1, r1, #(0xF << 20)\n"
      "str r1, [r0]\n"
      "dsb\n"
      "isb\n"
      "b tme_start\n");
}

void tme_start(void) {
  uint32_t *src = &__data_load;
  for (uint32_t *dst = &__data_start; dst < &__data_end;) *dst++ = *src++;
  for (uint32_t *dst = &__bss_start__; dst < &__bss_end__;) *dst++ = 0;
  initialise_monitor_handles();
  __libc_init_array();
  exit(main());
}

static void tme_fault(void) {
  /* A hard fault or other trap: leave QEMU with a distinctive status instead of hanging. */
  _Exit(99);
}

/* newlib's __libc_init_array calls _init (normally from crti.o, left out with the
 * rest of the default start files): nothing to do here. */
void _init(void) {}
void _fini(void) {}
/* Static C++ objects register their destructors against __dso_handle (crtbegin.o's). */
void *__dso_handle = 0;
