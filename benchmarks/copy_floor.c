/* copy_floor.py's loop in C: the floor of a copy with an Isthmus task's guarantees when the
 * per-file work is compiled, with no interpreter in the way.
 *
 * Each file is read in 1 MiB buffers, hashed (SHA-256, OpenSSL's) and written under a
 * temporary name in its destination folder. Every 1,000 files (or 256 MiB) the batch is made
 * durable with one syncfs, each file is read back and its digest compared, the files are
 * renamed to their names and the renames made durable with a second syncfs.
 *
 *     cc -O2 -o copy_floor_c copy_floor.c -lcrypto     (Debian: libssl-dev)
 *     ./copy_floor_c SOURCE_FOLDER DESTINATION_FOLDER  (the destination must not exist)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUFFER (1 << 20)
#define BATCH_FILES 1000
#define BATCH_BYTES (256L << 20)
#define PREFIX ".copy-floor-"

typedef struct {
    int folder;  /* the destination folder (closed by the commit, `held`) */
    char name[NAME_MAX + 1];
    int fd;      /* the temporary file, open for reading back */
    unsigned char digest[32];
} pending;

static unsigned char buffer[BUFFER];
static pending batch[BATCH_FILES];
static int batched;
/* Destination folders that files of the batch are in, closed once it is committed. */
static int held[BATCH_FILES + 1];
static long held_for[BATCH_FILES + 1];  /* which folder each is (`copy_tree`'s number) */
static long folders;
static int holding;
static long batch_bytes;
static int anchor;

static void fail(const char *what, const char *name) {
    fprintf(stderr, "copy_floor_c: %s %s: %s\n", what, name, strerror(errno));
    exit(1);
}

static void temporary_name(char *out, size_t size, const char *name) {
    snprintf(out, size, PREFIX "%s", name);
}

static void commit(void) {
    if (syncfs(anchor) != 0) fail("syncfs", "");
    for (int i = 0; i < batched; i++) {
        pending *file = &batch[i];
        EVP_MD_CTX *context = EVP_MD_CTX_new();
        EVP_DigestInit_ex(context, EVP_sha256(), NULL);
        off_t offset = 0;
        ssize_t count;
        while ((count = pread(file->fd, buffer, BUFFER, offset)) > 0) {
            EVP_DigestUpdate(context, buffer, (size_t)count);
            offset += count;
        }
        if (count < 0) fail("read back", file->name);
        unsigned char digest[32];
        EVP_DigestFinal_ex(context, digest, NULL);
        EVP_MD_CTX_free(context);
        if (memcmp(digest, file->digest, sizeof digest) != 0) {
            fprintf(stderr, "copy_floor_c: %s differs when read back\n", file->name);
            exit(1);
        }
        char temporary[NAME_MAX + sizeof PREFIX];
        temporary_name(temporary, sizeof temporary, file->name);
        if (renameat(file->folder, temporary, file->folder, file->name) != 0)
            fail("rename", file->name);
        close(file->fd);
    }
    if (syncfs(anchor) != 0) fail("syncfs", "");
    for (int i = 0; i < holding; i++) close(held[i]);
    holding = 0;
    batched = 0;
    batch_bytes = 0;
}

static void copy_file(int source_folder, int target_folder, long folder, const char *name) {
    int reading = openat(source_folder, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (reading < 0) fail("open", name);
    char temporary[NAME_MAX + sizeof PREFIX];
    temporary_name(temporary, sizeof temporary, name);
    int writing = openat(target_folder, temporary, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (writing < 0) fail("create", name);
    pending *file = &batch[batched++];
    EVP_MD_CTX *context = EVP_MD_CTX_new();
    EVP_DigestInit_ex(context, EVP_sha256(), NULL);
    ssize_t count;
    while ((count = read(reading, buffer, BUFFER)) > 0) {
        EVP_DigestUpdate(context, buffer, (size_t)count);
        if (write(writing, buffer, (size_t)count) != count) fail("write", name);
        batch_bytes += count;
    }
    if (count < 0) fail("read", name);
    close(reading);
    EVP_DigestFinal_ex(context, file->digest, NULL);
    EVP_MD_CTX_free(context);
    /* The batch holds a descriptor of its own for each folder it has files in. */
    if (holding == 0 || held_for[holding - 1] != folder) {
        held_for[holding] = folder;
        held[holding++] = dup(target_folder);
    }
    file->folder = held[holding - 1];
    snprintf(file->name, sizeof file->name, "%s", name);
    file->fd = writing;
    if (batched == BATCH_FILES || batch_bytes >= BATCH_BYTES) commit();
}

static int by_name(const struct dirent **a, const struct dirent **b) {
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Copy the entries of source_folder into target_folder, folders recursively, in name order. */
static void copy_tree(int source_folder, int target_folder) {
    long folder = ++folders;

    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", source_folder);
    struct dirent **entries;
    int count = scandir(self, &entries, NULL, by_name);
    if (count < 0) fail("list", self);
    for (int i = 0; i < count; i++) {
        const char *name = entries[i]->d_name;
        struct stat status;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
            fstatat(source_folder, name, &status, AT_SYMLINK_NOFOLLOW) != 0) {
            free(entries[i]);
            continue;
        }
        if (S_ISDIR(status.st_mode)) {
            if (mkdirat(target_folder, name, 0755) != 0 && errno != EEXIST) fail("mkdir", name);
            int from = openat(source_folder, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            int to = openat(target_folder, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (from < 0 || to < 0) fail("open folder", name);
            copy_tree(from, to);
            close(from);
            close(to);
        } else if (S_ISREG(status.st_mode)) {
            copy_file(source_folder, target_folder, folder, name);
        }
        free(entries[i]);
    }
    free(entries);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: copy_floor_c SOURCE_FOLDER DESTINATION_FOLDER\n");
        return 2;
    }
    /* A batch holds a descriptor per file and per folder: past the usual soft limit of
     * 1,024 when its files are in many folders. */
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
    int source = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (source < 0) fail("open", argv[1]);
    if (mkdir(argv[2], 0755) != 0) fail("mkdir", argv[2]);
    anchor = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (anchor < 0) fail("open", argv[2]);
    copy_tree(source, anchor);
    commit();
    return 0;
}
