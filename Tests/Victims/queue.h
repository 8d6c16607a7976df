/*
 * A bounded queue of blocks, locked with a mutex, through which one thread
 * hands blocks to another to free: the cross-thread frees of the threads
 * and stress victims. Define QUEUE_CAP before including it.
 */
#ifndef VICTIM_QUEUE_H
#define VICTIM_QUEUE_H

#include <pthread.h>
#include <stddef.h>

typedef struct {
  pthread_mutex_t lock;
  size_t head, count;
  void *items[QUEUE_CAP];
} queue_t;

static int queue_pop(queue_t *q, void **out) {
  pthread_mutex_lock(&q->lock);
  int ok = q->count > 0;
  if (ok) {
    *out = q->items[q->head];
    q->head = (q->head + 1) % QUEUE_CAP;
    q->count--;
  }
  pthread_mutex_unlock(&q->lock);
  return ok;
}

static int queue_push(queue_t *q, void *p) {
  pthread_mutex_lock(&q->lock);
  int ok = q->count < QUEUE_CAP;
  if (ok) {
    q->items[(q->head + q->count) % QUEUE_CAP] = p;
    q->count++;
  }
  pthread_mutex_unlock(&q->lock);
  return ok;
}

#endif
