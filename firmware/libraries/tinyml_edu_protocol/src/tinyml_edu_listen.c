/*
 * tinyml_edu_listen.c - see tinyml_edu_listen.h. Plain C99 without libc; the line numbers of
 * the rules follow tinyml_edu.listen.PosteriorSmoother.update, which this mirrors step by step.
 */
#include "tinyml_edu_listen.h"

void tme_smoother_reset(tme_smoother_t *s) {
  s->head = 0;
  s->count = 0;
  s->has_time = 0;
  s->last_time_ms = 0;
  s->has_detection = 0;
  s->last_detection_ms = 0;
  s->last_label = 0;
  s->armed = 1;
}

int tme_smoother_init(tme_smoother_t *s, const tme_listen_params_t *params,
                      const uint8_t *is_keyword, uint32_t num_classes) {
  uint32_t c;
  int any_keyword = 0;
  s->num_classes = 0; /* until everything checks out: update() then never detects */
  s->params = *params;
  tme_smoother_reset(s);
  if (num_classes == 0 || num_classes > TME_LISTEN_MAX_CLASSES) return TME_LISTEN_BAD_CLASSES;
  if (params->min_count < 1 || params->min_count > TME_LISTEN_MAX_HISTORY ||
      !(params->threshold > 0.0 && params->threshold <= 1.0)) {
    return TME_LISTEN_BAD_PARAMS;
  }
  for (c = 0; c < num_classes; ++c) {
    s->is_keyword[c] = (uint8_t)(is_keyword[c] != 0);
    any_keyword |= s->is_keyword[c];
  }
  if (!any_keyword) return TME_LISTEN_NO_KEYWORD;
  s->num_classes = num_classes;
  return TME_LISTEN_OK;
}

int tme_smoother_update(tme_smoother_t *s, uint32_t time_ms, const float *scores,
                        double *average) {
  const tme_listen_params_t *p = &s->params;
  double sums[TME_LISTEN_MAX_CLASSES];
  uint32_t c, k, slot, top;
  int top_is_nan;
  /* Times as signed 64-bit, as Python's ints: now - window may be negative. */
  const int64_t now = (int64_t)time_ms;

  if (s->num_classes == 0) return -1;
  if (s->has_time && time_ms <= s->last_time_ms) tme_smoother_reset(s);
  s->has_time = 1;
  s->last_time_ms = time_ms;

  /* 1. Append (when full, the oldest makes room: the "more than MAX_HISTORY" rule), then
   * drop the too old ones. */
  if (s->count == TME_LISTEN_MAX_HISTORY) {
    s->head = (s->head + 1u) % TME_LISTEN_MAX_HISTORY;
    s->count--;
  }
  slot = (s->head + s->count) % TME_LISTEN_MAX_HISTORY;
  for (c = 0; c < s->num_classes; ++c) s->scores[slot][c] = scores[c];
  s->times_ms[slot] = time_ms;
  s->count++;
  while (s->count > 0 &&
         (int64_t)s->times_ms[s->head] <= now - (int64_t)p->average_window_ms) {
    s->head = (s->head + 1u) % TME_LISTEN_MAX_HISTORY;
    s->count--;
  }

  /* 2. */
  if (s->count < p->min_count) return -1;

  /* 3. One class at a time, oldest first: the same additions in the same order as numpy's
   * `total += row` over the rows. */
  for (c = 0; c < s->num_classes; ++c) {
    double sum = 0.0;
    for (k = 0; k < s->count; ++k) {
      sum += (double)s->scores[(s->head + k) % TME_LISTEN_MAX_HISTORY][c];
    }
    sums[c] = sum / (double)s->count;
  }

  /* 4. argmax, first on a tie; numpy's argmax stops at the first NaN. */
  top = 0;
  top_is_nan = sums[0] != sums[0];
  for (c = 1; c < s->num_classes && !top_is_nan; ++c) {
    if (sums[c] != sums[c]) {
      top = c;
      top_is_nan = 1;
    } else if (sums[c] > sums[top]) {
      top = c;
    }
  }

  /* 5. */
  if (!s->is_keyword[top] || sums[top] < p->threshold) {
    s->armed = 1; /* the word is over */
    return -1;
  }
  if (!s->has_detection || top != s->last_label) s->armed = 1; /* another keyword leads */
  if (!s->armed || (s->has_detection &&
                    now - (int64_t)s->last_detection_ms < (int64_t)p->suppression_ms)) {
    return -1;
  }
  s->armed = 0;
  s->has_detection = 1;
  s->last_detection_ms = time_ms;
  s->last_label = top;
  if (average != 0) *average = sums[top];
  return (int)top;
}
