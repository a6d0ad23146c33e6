/*-------------------------------------------------------------------------
 *
 * shmem.c
 *		  The shared memory of vapi_fdw: the cumulative statistics
 *		  (stats.c) and the rate budget's buckets (budget.c), shared by
 *		  every backend of the cluster.
 *
 * Shared memory can only be had when the library is loaded at server
 * start (shared_preload_libraries).  Without that, vapi_shmem_ready() is
 * false and stats.c and budget.c keep their state in the backend's own
 * memory instead: the statistics and the rate budget are then per backend.
 *
 * src/shmem.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "vapi_fdw.h"

/* The tranche of vapi_fdw's one lock (the statistics' table). */
#define VAPI_LWLOCK_TRANCHE		"vapi_fdw"

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Set in every backend once the shared structures are attached. */
static bool shmem_ready = false;
static LWLock *shmem_lock = NULL;

static void vapi_shmem_request(void);
static void vapi_shmem_startup(void);

/*
 * vapi_shmem_install
 *		From _PG_init while shared_preload_libraries is being processed:
 *		ask for the shared memory and the lock, and set them up at start.
 */
void
vapi_shmem_install(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = vapi_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = vapi_shmem_startup;
}

/*
 * vapi_shmem_request
 *		shmem_request_hook: the space of the statistics and the buckets,
 *		and one lock.
 */
static void
vapi_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(add_size(vapi_stats_shmem_size(),
									vapi_budget_shmem_size()));
	RequestNamedLWLockTranche(VAPI_LWLOCK_TRANCHE, 1);
}

/*
 * vapi_shmem_startup
 *		shmem_startup_hook: create or attach the shared structures.
 */
static void
vapi_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shmem_lock = &(GetNamedLWLockTranche(VAPI_LWLOCK_TRANCHE))->lock;
	vapi_stats_shmem_init();
	vapi_budget_shmem_init();
	LWLockRelease(AddinShmemInitLock);
	shmem_ready = true;
}

/*
 * vapi_shmem_ready
 *		Are the shared structures there (the library was preloaded)?
 */
bool
vapi_shmem_ready(void)
{
	return shmem_ready;
}

/*
 * vapi_shmem_lock
 *		The lock of the statistics' table.
 */
LWLock *
vapi_shmem_lock(void)
{
	return shmem_lock;
}
