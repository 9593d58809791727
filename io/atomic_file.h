// Crash-safe file replacement, for checkpoints and run-directory files.
//
// The new contents go to "<path>.tmp.<pid>"; commit() flushes them to disk
// (fflush + fsync), renames the temp file over `path` (atomic on POSIX within
// one file system) and fsyncs the directory so the rename itself survives a
// power cut. A kill at any moment therefore leaves either the old file or the
// new one, whole; at worst a stale "<path>.tmp.<pid>" is left behind.
// The temp name holds only the pid: one writer per path per process.
#pragma once
#include <cstdio>
#include <string>
#include <string_view>

namespace pw {

class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);  // creates <path>.tmp.<pid>
  ~AtomicFile();                                  // without commit(): removes the temp file
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t nbytes);
  void write(std::string_view s) { write(s.data(), s.size()); }
  // Makes the new contents visible under `path`; the object is spent afterwards.
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return tmp_; }
  size_t bytes_written() const { return written_; }

 private:
  std::string path_, tmp_;
  FILE* f_ = nullptr;
  size_t written_ = 0;
  bool committed_ = false;
};

// The whole of `contents` into `path`, atomically (see AtomicFile).
void write_file_atomic(const std::string& path, std::string_view contents);

// The whole file as bytes; throws pw::Error naming the file if it can't be read.
std::string read_file(const std::string& path);

}  // namespace pw
