#ifndef CHAPERONE_ZLIB_SHIM_H
#define CHAPERONE_ZLIB_SHIM_H
#include <zlib.h>

/* inflateInit2 is a macro in zlib.h; Swift cannot call macros. */
static inline int chaperone_inflate_init(z_stream *stream, int window_bits) {
    return inflateInit2(stream, window_bits);
}
/* deflateInit2 likewise; 15 + 16 window bits writes a gzip header and trailer. */
static inline int chaperone_deflate_init_gzip(z_stream *stream, int level) {
    return deflateInit2(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}
#endif
