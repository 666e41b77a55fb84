/* shm.c - anonymous shared mappings inherited across fork(). */
#include <sys/mman.h>

#include "log.h"
#include "shm.h"

void *
shm_alloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		fatal("mmap shared %zu bytes", len);
	return p;
}

void
shm_free(void *p, size_t len)
{
	if (p)
		munmap(p, len);
}
