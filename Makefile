# hv: build, run and test. `make` builds build/hv.efi; `make run` boots it under
# Bochs with the demo payload; `make test` runs everything CI checks.
# Both install missing Debian packages when run as root (tests/tools/deps.sh).

B        := build
CC       := gcc
LD       := ld
OBJCOPY  := objcopy
GCCINC   := $(shell $(CC) -print-file-name=include)
LIBGCC   := $(shell $(CC) -print-libgcc-file-name)
NEWLIB   := $(B)/newlib/install/x86_64-elf
BOCHS    := $(B)/bochs/bin/bochs
OVMF     := /usr/share/ovmf/OVMF.fd

WARN     := -Wall -Wextra -Wno-unused-parameter
# The core: freestanding, position independent, never touches SSE/x87 state (the guest's);
# frame pointers for the backtrace of a fatal error (hv/fatal.c).
CORE_CFLAGS := -std=gnu11 -O2 -g $(WARN) -ffreestanding -fpie -fvisibility=hidden -fno-omit-frame-pointer \
	-mgeneral-regs-only -mno-red-zone -fno-stack-protector -ffunction-sections -fdata-sections \
	-nostdinc -isystem $(NEWLIB)/include -idirafter $(GCCINC) -I.
# PROF=1: lib/prof.h's path-length probes, printed at each HV_HC_GET_EXITS (`make bench PROF=1`).
ifeq ($(PROF),1)
CORE_CFLAGS += -DHV_PROF
endif
CORE_DIRS := lib vmx regcache nested hv
CORE_SRC := $(filter-out hv/asm_offsets.c,$(foreach d,$(CORE_DIRS),$(wildcard $(d)/*.c)))
CORE_ASM := $(foreach d,$(CORE_DIRS),$(wildcard $(d)/*.asm))
CORE_OBJ := $(CORE_SRC:%.c=$(B)/core/%.o) $(CORE_ASM:%.asm=$(B)/core/%.o)

# boot/ and the test payload: GNU-EFI applications.
EFI_CFLAGS := -std=gnu11 -O2 -g $(WARN) -ffreestanding -fpic -fshort-wchar -mno-red-zone \
	-fno-stack-protector -DGNU_EFI_USE_MS_ABI -I/usr/include/efi -I/usr/include/efi/x86_64 -I.
EFI_LDFLAGS := -nostdlib -znocombreloc -z noexecstack -T /usr/lib/elf_x86_64_efi.lds -shared -Bsymbolic -L/usr/lib \
	/usr/lib/crt0-efi-x86_64.o
EFI_SECTIONS := -j .text -j .sdata -j .data -j .dynamic -j .dynsym -j .rel -j .rela -j .reloc
BOOT_SRC := $(wildcard boot/*.c)
BOOT_SRC := $(filter-out boot/scramble_tool.c,$(BOOT_SRC))
BOOT_OBJ := $(BOOT_SRC:%.c=$(B)/efi/%.o) $(B)/efi/boot/trampoline.o $(B)/efi/lib/serial.o
PAYLOAD_SRC := $(wildcard tests/payload/*.c)
PAYLOAD_OBJ := $(PAYLOAD_SRC:%.c=$(B)/efi/%.o) $(B)/efi/boot/log.o $(B)/efi/lib/serial.o

.PHONY: all deps deps-test newlib bochs run test unit bench clean usb run-qemu
all: $(B)/hv.efi $(B)/payload.efi

deps:
	@tests/tools/deps.sh build
deps-test:
	@tests/tools/deps.sh test

# newlib is slow to build: once, behind a stamp keyed on tarball, script and flags.
newlib $(NEWLIB)/lib/libc.a: | deps
	@tests/tools/build-newlib.sh $(B)/newlib
bochs $(BOCHS): | deps-test
	@tests/tools/build-bochs.sh $(B)/bochs

# The core's objects are rebuilt when its flags change (PROF=1 and back).
$(B)/core/.flags: FORCE
	@mkdir -p $(dir $@); echo '$(CORE_CFLAGS)' | cmp -s - $@ || echo '$(CORE_CFLAGS)' > $@
.PHONY: FORCE
$(B)/core/%.o: %.c $(B)/core/.flags | $(NEWLIB)/lib/libc.a
	@mkdir -p $(dir $@)
	$(CC) $(CORE_CFLAGS) -MMD -c $< -o $@
$(B)/core/%.o: %.asm $(B)/core/asm_offsets.inc | deps
	@mkdir -p $(dir $@)
	nasm -f elf64 -g -I$(B)/core/ -o $@ $<
$(B)/core/asm_offsets.inc: hv/asm_offsets.c hv/*.h regcache/*.h vmx/*.h | $(NEWLIB)/lib/libc.a
	@mkdir -p $(dir $@)
	$(CC) $(CORE_CFLAGS) -S -o $(B)/core/asm_offsets.s $<
	sed -n 's/.*->\([A-Z_0-9]*\) \$$*\([0-9]*\).*/%define \1 \2/p' $(B)/core/asm_offsets.s > $@

$(B)/core.elf: $(CORE_OBJ) linker.ld $(NEWLIB)/lib/libc.a
	$(LD) -pie --no-dynamic-linker -z notext -z norelro -z noexecstack --no-warn-rwx-segments -nostdlib --gc-sections -Bsymbolic \
		--undefined=hv_cpu_main --undefined=hv_dma_entry -T linker.ld -o $@ $(CORE_OBJ) $(NEWLIB)/lib/libc.a $(LIBGCC)
	@# boot/ applies only R_X86_64_RELATIVE; anything else would be a silent miscompile.
	@if readelf -rW $@ | awk '/^ *[0-9a-f]+ +[0-9a-f]+ R_X86/ && $$3 != "R_X86_64_RELATIVE"' | grep -q .; then \
		echo "core.elf: relocations other than R_X86_64_RELATIVE:"; readelf -rW $@ | grep -v RELATIVE; exit 1; fi
	@# hv never touches SSE state: it belongs to the guest.
	@if objdump -d $@ | grep -qE '%[xy]mm[0-9]'; then echo "core.elf uses SSE registers:"; \
		objdump -d $@ | grep -E '%[xy]mm[0-9]' | head; exit 1; fi

$(B)/core.bin: $(B)/core.elf
	$(OBJCOPY) -O binary $< $@

$(B)/host/scramble: boot/scramble_tool.c boot/scramble.h
	@mkdir -p $(dir $@)
	$(CC) -O2 -o $@ $<
$(B)/core.scr: $(B)/core.bin $(B)/host/scramble
	$(B)/host/scramble $< $@
$(B)/efi/core_blob.o: $(B)/core.scr
	@mkdir -p $(dir $@)
	cd $(B) && $(OBJCOPY) -I binary -O elf64-x86-64 -B i386:x86-64 \
		--redefine-sym _binary_core_scr_start=hv_core_blob --redefine-sym _binary_core_scr_end=hv_core_blob_end \
		--strip-symbol _binary_core_scr_size core.scr efi/core_blob.o

$(B)/efi/%.o: %.asm | deps
	@mkdir -p $(dir $@)
	nasm -f elf64 -g -o $@ $<
$(B)/efi/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(EFI_CFLAGS) -MMD -c $< -o $@

$(B)/hv.so: $(BOOT_OBJ) $(B)/efi/core_blob.o
	$(LD) $(EFI_LDFLAGS) -o $@ $^ -lefi -lgnuefi
$(B)/payload.so: $(PAYLOAD_OBJ)
	$(LD) $(EFI_LDFLAGS) -o $@ $^ -lefi -lgnuefi
$(B)/%.efi: $(B)/%.so
	$(OBJCOPY) $(EFI_SECTIONS) --target efi-app-x86_64 --subsystem=10 $< $@
	@echo "built $@ ($$(stat -c %s $@) bytes)"

-include $(shell find $(B)/core $(B)/efi -name '*.d' 2>/dev/null)

# ---- the USB stick: a GPT image with hv on its ESP; DEV=/dev/sdX also writes it (checked first) ----
$(B)/hv-usb.img: $(B)/hv.efi tests/tools/usb-hv.cfg tests/tools/mkgpt.sh | deps
	tests/tools/mkgpt.sh $@ HVBOOT "" $(B)/hv.efi:/EFI/BOOT/BOOTX64.EFI tests/tools/usb-hv.cfg:/EFI/BOOT/hv.cfg
	@echo "built $@: GPT, one EFI System Partition (FAT32, label HVBOOT) with \\EFI\\BOOT\\BOOTX64.EFI and hv.cfg"
usb: $(B)/hv-usb.img
	@if [ -n "$(DEV)" ]; then tests/tools/write-usb.sh "$(DEV)" $<; \
	else echo "make usb: to write it to a stick: make usb DEV=/dev/sdX (or any image writer; see docs/hardware.md)"; fi
# The stick image under QEMU: KVM with nested VMX when it can, TCG otherwise (no VMX: hv steps aside).
run-qemu: $(B)/hv-usb.img
	@tests/tools/run-qemu.sh $<

# ---- tests ----
run: all $(BOCHS)
	@tests/boot/run-demo.sh

LINUX_DEPS = $(B)/acpi_fixture.efi $(B)/linux/vmlinuz $(B)/linux/initrd.img
test: all $(B)/l1.efi $(BOCHS) $(LINUX_DEPS) | deps-test
	@tests/run-tests.sh

bench: all $(BOCHS)
	@tests/boot/bench.sh

unit: | deps
	@tests/run-tests.sh unit

clean:
	rm -rf $(B)/core $(B)/efi $(B)/host $(B)/tests $(B)/*.efi $(B)/*.so $(B)/core.*

# ---- test-linux: Debian's kernel as hv's next stage under Bochs, 2 CPUs (about 45 s; also in `make test`) ----
FIXTURE_OBJ := $(B)/efi/tests/linux/acpi_fixture.o $(B)/efi/tests/linux/acpi_tables.o $(B)/efi/boot/log.o \
	$(B)/efi/lib/serial.o
$(B)/acpi_fixture.so: $(FIXTURE_OBJ)
	$(LD) $(EFI_LDFLAGS) -o $@ $^ -lefi -lgnuefi
# Debian's linux-image-amd64, unpacked (never installed); cached behind build/linux/stamp.
$(B)/linux/vmlinuz: tests/tools/get-kernel.sh
	@tests/tools/get-kernel.sh $(B)/linux
$(B)/linux/init: tests/linux/init.c tests/linux/hvcall.h hv/hypercall.h
	@mkdir -p $(dir $@)
	$(CC) -static -Os -Wall -Wextra -o $@ $<
$(B)/linux/kvmtest: tests/linux/kvmtest.c tests/linux/hvcall.h hv/hypercall.h
	@mkdir -p $(dir $@)
	$(CC) -static -O2 -Wall -Wextra -pthread -o $@ $<
# get-kernel.sh also installs cpio; it leaves KVM's modules in $(B)/linux/modules.
$(B)/linux/initrd.img: $(B)/linux/init $(B)/linux/kvmtest tests/linux/mkinitrd.sh | $(B)/linux/vmlinuz
	@tests/linux/mkinitrd.sh $< $@ $(B)/linux/kvmtest $(B)/linux/modules

.PHONY: test-linux
test-linux: all $(BOCHS) $(LINUX_DEPS) | deps-test
	@tests/linux/test-linux.sh

# ---- test-kvm: Linux's kvm_intel as L1 (the same initramfs, /init's hvtest=kvm mode) under hv
# and on bare Bochs in parallel, 2 CPUs each; the guests' result lines must agree ----
.PHONY: test-kvm
test-kvm: all $(BOCHS) $(LINUX_DEPS) | deps-test
	@tests/linux/test-kvm.sh

# ---- bench-kvm: figures, not a test: test-kvm's boots (reused when fresh) as benchmarks, KVM's guest
# I/O round trip, a guest loop and Linux's boot under hv vs bare Bochs (tests/linux/bench-kvm.sh) ----
.PHONY: bench-kvm
bench-kvm: all $(BOCHS) $(LINUX_DEPS) | deps-test
	@tests/linux/bench-kvm.sh

# ---- test-nested: l1.efi, a small VMX hypervisor, on bare Bochs and as hv's guest; the
# two serial logs must agree line for line (tests/nested/run-diff.sh) ----
L1_OBJ := $(patsubst %.c,$(B)/efi/%.o,$(wildcard tests/nested/*.c)) \
	$(patsubst %.asm,$(B)/efi/%.o,$(wildcard tests/nested/*.asm)) $(B)/efi/boot/log.o $(B)/efi/lib/serial.o
$(B)/l1.so: $(L1_OBJ)
	$(LD) $(EFI_LDFLAGS) -o $@ $^ -lefi -lgnuefi

.PHONY: test-nested
test-nested: all $(B)/l1.efi $(BOCHS) | deps-test
	@tests/nested/run-diff.sh

# ---- test-hvhv: hv as L1 of hv (the inner hv.efi is the outer's next stage), with the payload and
# l1.efi under the inner one, on the full and a KVM-like capability set (tests/hvhv/test-hvhv.sh) ----
.PHONY: test-hvhv
test-hvhv: all $(B)/l1.efi $(BOCHS) | deps-test
	@tests/hvhv/test-hvhv.sh
