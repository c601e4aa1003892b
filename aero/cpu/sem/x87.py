"""x87 floating-point instructions (opcodes D8-DF and WAIT): the templates call the one
definition of each instruction in ``aero.fpu.insns``, with the instruction's constants (its
table slot, ModR/M byte, EIP, address mask and operand size) as arguments."""

from ...fpu.insns import mem_op as x87_mem, reg_op as x87_reg, wait as x87_wait  # noqa: F401

TEMPLATES = {
    # memory forms: slot (opcode - D8h) * 8 + reg
    "X87@m": "x87_mem(cpu, $ARG, $MODRM, $SEG, $EA, $EIP, $AMASK, $OSZ)\n",
    # register forms: slot * 8 + rm
    "X87@r": "x87_reg(cpu, $ARG * 8 + $RM, $EIP)\n",
    # WAIT/FWAIT: #NM when CR0.MP and CR0.TS are both set, then a pending x87 exception
    "WAIT": "x87_wait(cpu)\n",
}
