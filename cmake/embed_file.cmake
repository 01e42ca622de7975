# Writes a C file that holds the bytes of INPUT as `const char SYMBOL[]` and its length.
# Run as: cmake -DINPUT=... -DOUTPUT=... -DSYMBOL=... -P embed_file.cmake
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hexlen)
math(EXPR len "${hexlen} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){32})" "\\1\n" body "${body}")
string(RANDOM LENGTH 8 tag)
file(WRITE "${OUTPUT}.${tag}.tmp"
  "/* Generated from ${INPUT} at build time; do not edit. */\n"
  "#include <stddef.h>\n"
  "const char ${SYMBOL}[] = {\n${body}0x00};\n"
  "const size_t ${SYMBOL}_len = ${len};\n")
file(RENAME "${OUTPUT}.${tag}.tmp" "${OUTPUT}")
