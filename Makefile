# Makefile for vapi_fdw
#
# Builds the vapi_fdw extension with PGXS.  Set PG_CONFIG to build against a
# specific PostgreSQL installation; set WERROR=1 to turn warnings into errors
# (the test suite and CI do).

MODULE_big = vapi_fdw
OBJS = \
	src/vapi_fdw.o \
	src/option.o \
	src/deparse.o \
	src/http.o \
	src/connection.o \
	src/json.o \
	src/body.o \
	src/import.o \
	src/modify.o \
	src/xact.o \
	src/rules.o \
	src/columns.o \
	src/scan.o \
	src/shmem.o \
	src/stats.o \
	src/budget.o

EXTENSION = vapi_fdw
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(srcdir)/vapi_fdw.control)
DATA = vapi_fdw--0.1.sql vapi_fdw--0.1--0.2.sql
PGFILEDESC = "vapi_fdw - foreign data wrapper for Vapi phone numbers"

REGRESS = setup options scan types import errors paging pushdown modify defects entrypoints fidelity reliability hostile soak concurrency parallel monitor upgrade
REGRESS_OPTS = --load-extension=vapi_fdw

SHLIB_LINK += -lcurl -ljson-c
PG_CPPFLAGS += -I$(srcdir)/src -DVAPI_FDW_VERSION='"$(EXTVERSION)"'
PG_CFLAGS += -Wall -Wmissing-prototypes -Wpointer-arith -Wendif-labels \
	-Wmissing-format-attribute -Wformat-security
ifdef WERROR
PG_CFLAGS += -Werror
endif

EXTRA_CLEAN = results regression.diffs regression.out

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(OBJS): src/vapi_fdw.h

# A build outside the source tree (VPATH, as pg_buildext does it) puts the
# objects in src/ of the build directory.
ifdef VPATH
$(shell mkdir -p src)
endif
