# SMILE EWP gateway - one GNU Makefile, dependencies through pkg-config.
#
#   make            build ewpd and ewpctl
#   make check      every test: unit (cmocka), integration and interop
#   make demo       run two throwaway demo nodes on loopback (see README)
#   make bench      performance figures (ratios measured in one run)
#   make SANITIZE=1 check   the same under ASan + UBSan

PKGS     := libevent libevent_openssl libcurl libxml-2.0 openssl libpq
CC       ?= cc
PREFIX   ?= /usr/local
BUILD    ?= build

CFLAGS   ?= -O2 -g
CFLAGS   += -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wformat=2 -Wshadow \
	    -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith -Wvla \
	    -fno-common -fstack-protector-strong -MMD -MP -Igateway
ifneq ($(SANITIZE),)
ifeq ($(SANITIZE),1)
SANITIZERS := address,undefined
else
SANITIZERS := $(SANITIZE)
endif
CFLAGS   += -fsanitize=$(SANITIZERS) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=$(SANITIZERS)
BUILD    := build-san
else
CFLAGS   += -D_FORTIFY_SOURCE=2
endif

DEPS_OK  := $(shell pkg-config --exists $(PKGS) && echo yes)
ifeq ($(DEPS_OK),yes)
CFLAGS   += $(shell pkg-config --cflags $(PKGS))
LDLIBS   += $(shell pkg-config --libs $(PKGS))
endif

# Modules shared by every program.
COMMON_SRCS := gateway/log.c gateway/xmalloc.c gateway/buf.c gateway/codec.c gateway/keys.c \
	gateway/httpsig.c gateway/httpsig_parse.c gateway/httpsig_verify.c gateway/httpsig_sign.c \
	gateway/httpsig_client.c gateway/xml.c gateway/registry.c gateway/registry_map.c \
	gateway/registry_load.c gateway/registry_elems.c gateway/conf.c gateway/form.c gateway/fetch.c \
	gateway/xmlw.c gateway/nonce.c gateway/shm.c gateway/metrics.c gateway/httpc.c gateway/db.c \
	gateway/csv.c gateway/json.c gateway/msglog.c gateway/sync.c gateway/sync_fetch.c \
	gateway/sync_read.c gateway/sync_store.c \
	gateway/portal/portal_password.c

# The staff portal (gateway/portal/); its stylesheet is compiled in.
PORTAL_SRCS := gateway/portal/portal.c gateway/portal/portal_db.c gateway/portal/portal_html.c \
	gateway/portal/portal_i18n.c gateway/portal/portal_session.c gateway/portal/portal_login.c \
	gateway/portal/portal_home.c gateway/portal/portal_pages.c gateway/portal/portal_export.c \
	gateway/portal/portal_text.c gateway/portal/portal_pwcheck.c
PORTAL_SRCS += gateway/portal/portal_dashboard.c
PORTAL_SRCS += gateway/portal/portal_workflow.c gateway/portal/portal_partners.c \
	gateway/portal/portal_keys.c

# a student's file and the staff decisions
PORTAL_SRCS += gateway/portal/portal_student.c gateway/portal/portal_student_la.c \
	gateway/portal/portal_student_act.c
PORTAL_SRCS += gateway/portal/portal_log.c gateway/portal/portal_jobs.c

EWPD_SRCS := gateway/main.c gateway/supervisor.c gateway/worker.c gateway/server.c gateway/req.c \
	gateway/tls.c gateway/manifest.c gateway/api/api.c gateway/api/api_echo.c \
	gateway/api/api_discovery.c gateway/api/api_db.c gateway/api/api_institutions.c \
	gateway/api/api_ounits.c gateway/api/api_course_replication.c gateway/api/api_courses.c \
	gateway/api/api_factsheet.c gateway/factsheet.c gateway/api/api_cnr.c \
	gateway/api/api_omobility_cnr.c gateway/api/api_omobility_la_cnr.c gateway/jobs.c \
	gateway/jobs_cnr.c gateway/jobs_refetch.c gateway/api/api_omobilities.c \
	gateway/api/api_omobilities_update.c gateway/jobs_refetch_omobilities.c gateway/jobs_index.c \
	gateway/jobs_index_omobilities.c gateway/jobs_resync.c gateway/api/api_omobility_las.c \
	gateway/api/api_omobility_las_update.c gateway/jobs_refetch_las.c gateway/jobs_update.c \
	gateway/api/api_imobilities.c gateway/api/api_imobility_cnr.c gateway/jobs_refetch_imobilities.c \
	gateway/api/api_omobility_la_cnr_stats.c gateway/jobs_call.c $(PORTAL_SRCS)

EWPCTL_SRCS := gateway/ctl/ewpctl.c gateway/ctl/ctl_keys.c gateway/ctl/ctl_call.c \
	gateway/ctl/ctl_registry.c gateway/ctl/ctl_migrate.c gateway/ctl/ctl_import.c \
	gateway/ctl/ctl_import_check.c gateway/ctl/ctl_import_write.c gateway/ctl/ctl_sync.c \
	gateway/ctl/ctl_log.c gateway/ctl/ctl_jobs.c gateway/ctl/ctl_mobility.c gateway/ctl/ctl_nominate.c \
	gateway/ctl/ctl_mobility_sync.c gateway/ctl/ctl_la_send.c gateway/ctl/ctl_decide.c \
	gateway/ctl/ctl_mobility_show.c gateway/ctl/ctl_mobility_dates.c \
	gateway/ctl/ctl_user.c

UNIT_TESTS := buf codec keys httpsig conf form xml registry nonce httpc db csv json jobs \
	password

COMMON_OBJS := $(COMMON_SRCS:%.c=$(BUILD)/%.o)
EWPD_OBJS   := $(EWPD_SRCS:%.c=$(BUILD)/%.o)
EWPCTL_OBJS := $(EWPCTL_SRCS:%.c=$(BUILD)/%.o)
UNIT_BINS   := $(UNIT_TESTS:%=$(BUILD)/tests/test_%)

ewpd ewpctl: all

.PHONY: ewpd ewpctl all deps check unit integration demo demo-stop bench fuzz lint format clean install

all: $(BUILD)/ewpd $(BUILD)/ewpctl

$(BUILD)/ewpd: $(EWPD_OBJS) $(COMMON_OBJS) $(BUILD)/gateway/portal/portal_css.o
	$(CC) $(LDFLAGS) -pthread -o $@ $^ $(LDLIBS)

# The portal's stylesheet as a C string, so ewpd serves it without a file.
$(BUILD)/gateway/portal/portal_css.c: gateway/portal/portal.css
	@mkdir -p $(dir $@)
	@{ echo 'const char portal_css[] ='; \
	   sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $<; echo ';'; } > $@

$(BUILD)/gateway/portal/portal_css.o: $(BUILD)/gateway/portal/portal_css.c
	$(CC) $(CFLAGS) -Wno-missing-variable-declarations -c -o $@ $<

$(BUILD)/ewpctl: $(EWPCTL_OBJS) $(COMMON_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/gateway/ctl/ctl_migrate.o $(BUILD)/gateway/ctl/ewpctl.o: CFLAGS += -DEWP_SQL_DIR='"$(PREFIX)/share/ewpd/sql"'
$(BUILD)/gateway/conf.o: CFLAGS += -DEWP_SCHEMA_DIR='"$(PREFIX)/share/ewpd/schemas"' \
	-DEWP_PORTAL_STRINGS='"$(PREFIX)/share/ewpd/portal"'

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# Unit tests: one cmocka program per module, linked with the shared modules
# and the helpers of tests/unit/testutil.c.
$(BUILD)/tests/test_%: tests/unit/test_%.c tests/unit/testutil.c tests/unit/testutil.h $(COMMON_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $(filter %.c %.o,$^) $(LDLIBS) $(shell pkg-config --libs cmocka)

# The job engine and its kinds belong to ewpd; test_jobs links them too.
$(BUILD)/tests/test_jobs: $(BUILD)/gateway/jobs.o $(BUILD)/gateway/jobs_cnr.o \
	$(BUILD)/gateway/jobs_refetch.o $(BUILD)/gateway/jobs_refetch_omobilities.o \
	$(BUILD)/gateway/jobs_index.o $(BUILD)/gateway/jobs_index_omobilities.o \
	$(BUILD)/gateway/jobs_resync.o $(BUILD)/gateway/jobs_refetch_las.o $(BUILD)/gateway/jobs_update.o \
	$(BUILD)/gateway/jobs_refetch_imobilities.o $(BUILD)/gateway/jobs_call.o

deps:
	@.ci/install-deps.sh

unit: $(UNIT_BINS)
	@tests/run-unit.sh $(UNIT_BINS)

integration: all
	@EWPD=$(BUILD)/ewpd EWPCTL=$(BUILD)/ewpctl tests/integration/run.sh

# make check also needs a browser (Debian's chromium, for the portal's
# browser tests); make demo does not.
.PHONY: deps-check
deps-check:
	@EWP_EXTRA_PACKAGES="$(EWP_EXTRA_PACKAGES) chromium" .ci/install-deps.sh

check: deps-check
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) integration
ifeq ($(SANITIZE),)
	$(MAKE) fuzz FUZZ_SECS=$(FUZZ_SECS)
endif

demo: deps
	$(MAKE) all
	@tests/demo/demo.sh

demo-stop:
	@tests/demo/demo.sh stop

# Fuzzing (clang libFuzzer): every target runs FUZZ_SECS seconds from the
# seeds in tests/fuzz/seeds/<target>; findings are left in build-fuzz/.
FUZZ_SECS    ?= 20
FUZZ_TARGETS := form httpsig xml csv json sync update portal
FUZZ_EXTRA_xml := $(wildcard ../shared/ewp-specs/ewp-specs-api-registry ../shared/ewp-specs/ewp-specs-api-discovery)
FUZZ_EXTRA_sync := $(wildcard ../shared/ewp-specs/ewp-specs-api-institutions ../shared/ewp-specs/ewp-specs-api-ounits)
FUZZ_EXTRA_update := $(wildcard ../shared/ewp-specs/ewp-specs-api-omobility-las/examples/update-request-examples)
FUZZ_CFLAGS  := -std=c17 -D_GNU_SOURCE -g -O1 -Igateway \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	$(shell pkg-config --cflags libxml-2.0 openssl libpq 2>/dev/null)
FUZZ_LIBS    := $(shell pkg-config --libs libxml-2.0 openssl 2>/dev/null)
FUZZ_COMMON  := gateway/form.c gateway/httpsig.c gateway/httpsig_parse.c \
	gateway/httpsig_verify.c gateway/httpsig_sign.c gateway/httpsig_client.c gateway/keys.c \
	gateway/codec.c gateway/xml.c gateway/registry.c gateway/registry_map.c \
	gateway/registry_load.c gateway/registry_elems.c gateway/buf.c gateway/log.c gateway/xmalloc.c \
	gateway/csv.c gateway/json.c gateway/sync_read.c gateway/portal/portal_text.c

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_COMMON)
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) -o $@ $^ $(FUZZ_LIBS)

fuzz: $(FUZZ_TARGETS:%=build-fuzz/fuzz_%)
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p build-fuzz/corpus-$$t; extra=""; \
		[ $$t = xml ] && extra="$(FUZZ_EXTRA_xml)"; \
		[ $$t = sync ] && extra="$(FUZZ_EXTRA_sync)"; \
		[ $$t = update ] && extra="$(FUZZ_EXTRA_update)"; \
		echo "fuzzing $$t for $(FUZZ_SECS)s"; \
		build-fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECS) -max_len=65536 -timeout=10 \
			-print_final_stats=0 build-fuzz/corpus-$$t tests/fuzz/seeds/$$t $$extra \
			> build-fuzz/$$t.log 2>&1 || { tail -40 build-fuzz/$$t.log; exit 1; }; \
		grep -h 'Done [0-9]* runs' build-fuzz/$$t.log; \
	done

bench: deps
	$(MAKE) all
	@bench/run.sh

lint:
	@tests/lint.sh

format:
	clang-format -i $$(find gateway tests/unit tests/fuzz bench -name "*.[ch]")

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)/etc/ewpd
	install -m 0755 $(BUILD)/ewpd $(BUILD)/ewpctl $(DESTDIR)$(PREFIX)/sbin/
	install -m 0644 conf/ewpd.conf.example conf/factsheet.example.xml $(DESTDIR)/etc/ewpd/
	install -d $(DESTDIR)$(PREFIX)/share/ewpd/sql
	install -m 0644 sql/*.sql $(DESTDIR)$(PREFIX)/share/ewpd/sql/
	install -d $(DESTDIR)$(PREFIX)/share/ewpd/schemas/intake
	install -m 0644 ewp-schemas/*.xsd $(DESTDIR)$(PREFIX)/share/ewpd/schemas/
	install -m 0644 ewp-schemas/intake/*.xsd $(DESTDIR)$(PREFIX)/share/ewpd/schemas/intake/
	install -d $(DESTDIR)$(PREFIX)/share/ewpd/portal/fr $(DESTDIR)$(PREFIX)/share/ewpd/portal/en
	install -m 0644 conf/portal/fr/*.strings $(DESTDIR)$(PREFIX)/share/ewpd/portal/fr/
	install -m 0644 conf/portal/en/*.strings $(DESTDIR)$(PREFIX)/share/ewpd/portal/en/

clean:
	rm -rf build build-san build-fuzz ewpd ewpctl

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
