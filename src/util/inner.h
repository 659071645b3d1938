/* Shared inside the util layer only: the streaming check of chunked frames (chunked.c) that
 * ppnn_file_check (container.c) hands the bytes after the header to. */
#ifndef PPNN_UTIL_INNER_H
#define PPNN_UTIL_INNER_H

#include "ppnn/util.h"

/* Default bound on the chunks of an upload when the caller gives none (the lengths and
 * digests kept for the check: 24 bytes each, 24 MiB at most). */
#define PPNN_CHUNKS_MAX ((uint64_t)1 << 20)

/* 16 + M + 24 C <= L: count chunks and meta_len metadata bytes fit a payload of L bytes. */
int ppnn_chunked_sizes_fit(uint64_t count, uint64_t meta_len, uint64_t L);
PPNN_MUST_CHECK ppnn_status ppnn_chunk_check_update(ppnn_file_check *c, const uint8_t *buf,
                                                    size_t len);
void ppnn_chunk_check_free(ppnn_file_check *c);

#endif
