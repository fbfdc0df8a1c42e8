/*
 * tinyml_edu_listen.h - the posterior smoother of an always-listening keyword spotter.
 *
 * The C copy of tinyml_edu.listen.PosteriorSmoother (read its module docstring for why each
 * rule is there). Every hop the sketch gives it the model's dequantized scores and the time in
 * milliseconds; it answers with the class it detects (or -1) and that class's averaged score:
 *
 *   1. append the scores, then drop the oldest while its time <= now - average_window_ms
 *      (or more than TME_LISTEN_MAX_HISTORY are kept);
 *   2. no decision while fewer than min_count are kept;
 *   3. average class by class: a double sum, oldest first, one addition at a time, divided by
 *      the count (the host does the same, so both get the same bits);
 *   4. top = the first class with the highest average (a NaN counts as highest, as numpy's
 *      argmax has it);
 *   5. top not a keyword, or its average < threshold: re-arm, no detection;
 *      top not the last detected class: re-arm;
 *      disarmed, or the last detection less than suppression_ms ago: no detection;
 *      else detect, disarm and remember time and class.
 *
 * tests/test_listen_firmware.py runs this file on the host against the Python smoother and
 * checks that both detect the same classes at the same times with bit-identical scores.
 *
 * Plain C99, no libc, no malloc: all storage is in tme_smoother_t (about 4.3 kB with the
 * default sizes; define TME_LISTEN_MAX_CLASSES smaller before including to save RAM).
 */
#ifndef TINYML_EDU_LISTEN_H_
#define TINYML_EDU_LISTEN_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The most score vectors kept: tinyml_edu.listen.MAX_HISTORY. */
#define TME_LISTEN_MAX_HISTORY 32
#ifndef TME_LISTEN_MAX_CLASSES
#define TME_LISTEN_MAX_CLASSES 32
#endif

#define TME_LISTEN_OK 0
#define TME_LISTEN_BAD_CLASSES -1  /* num_classes is 0 or above TME_LISTEN_MAX_CLASSES */
#define TME_LISTEN_NO_KEYWORD -2   /* no class is a keyword: nothing could be detected */
#define TME_LISTEN_BAD_PARAMS -3   /* min_count or threshold out of range */

/* The values of tinyml_edu.listen.ListenParams (hop_ms is the sketch's business). */
typedef struct {
  uint32_t average_window_ms;
  uint32_t min_count;      /* 1 .. TME_LISTEN_MAX_HISTORY */
  double threshold;        /* (0, 1] */
  uint32_t suppression_ms;
} tme_listen_params_t;

typedef struct {
  tme_listen_params_t params;
  uint32_t num_classes;
  uint8_t is_keyword[TME_LISTEN_MAX_CLASSES];
  /* The history: a ring of `count` entries, the oldest at `head`. */
  float scores[TME_LISTEN_MAX_HISTORY][TME_LISTEN_MAX_CLASSES];
  uint32_t times_ms[TME_LISTEN_MAX_HISTORY];
  uint32_t head;
  uint32_t count;
  uint8_t has_time;       /* an update has been seen (last_time_ms is valid) */
  uint32_t last_time_ms;
  uint8_t has_detection;  /* last_detection_ms and last_label are valid */
  uint32_t last_detection_ms;
  uint32_t last_label;
  uint8_t armed;
} tme_smoother_t;

/* is_keyword: num_classes flags, nonzero for a keyword (not silence, unknown, ...). Returns
 * TME_LISTEN_OK or one of the errors above (then the smoother never detects anything). */
int tme_smoother_init(tme_smoother_t *s, const tme_listen_params_t *params,
                      const uint8_t *is_keyword, uint32_t num_classes);

/* Forget the history and the last detection (e.g. when inference is switched back on). */
void tme_smoother_reset(tme_smoother_t *s);

/* One inference: num_classes scores at time_ms (strictly increasing; a time that is not,
 * e.g. after the 49-day wrap of a millisecond counter, restarts the smoother first).
 * Returns the detected class, or -1; *average (may be NULL) gets the detected class's
 * averaged score. */
int tme_smoother_update(tme_smoother_t *s, uint32_t time_ms, const float *scores,
                        double *average);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* TINYML_EDU_LISTEN_H_ */
