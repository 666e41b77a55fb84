/*
 * shm.h - memory shared by the supervisor and its workers.
 *
 * Mapped once by the supervisor before it forks, so every worker sees the
 * same counters and request-id table. Only lock-free atomic operations are
 * used on it: a worker killed at any instant cannot leave a lock held.
 */
#ifndef SHM_H
#define SHM_H

#include <stddef.h>

/* Anonymous shared mapping of len bytes, zeroed; dies on failure. */
void *shm_alloc(size_t len);
void shm_free(void *p, size_t len);

#endif
