/*
 * manifest.h - the Discovery v6 manifest of this node.
 *
 * Built from the configuration, the keys in use (plus those published for
 * rotation) and the API table, so that it lists exactly what is served.
 */
#ifndef MANIFEST_H
#define MANIFEST_H

#include <stddef.h>

#include "buf.h"
#include "conf.h"
#include "keys.h"

/*
 * Writes the manifest into out. Extra public keys are read from the .pub
 * files listed in [keys] publish_*; -1 with a reason in err when one
 * cannot be read.
 */
int manifest_build(const struct conf *c, const struct keys_priv *client,
                   const struct keys_priv *server, struct buf *out, char *err,
                   size_t errlen) EWP_MUSTCHECK;

#endif
