#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runtime/check.h"

namespace pw {

namespace {

std::string errno_str() { return std::strerror(errno); }

std::string parent_dir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

AtomicFile::AtomicFile(const std::string& path) : path_(path) {
  PW_CHECK(!path.empty(), "AtomicFile: empty path");
  tmp_ = path + ".tmp." + std::to_string((long)::getpid());
  f_ = std::fopen(tmp_.c_str(), "wb");
  if (!f_) throw Error("cannot create '" + tmp_ + "' to write '" + path + "': " + errno_str());
}

AtomicFile::~AtomicFile() {
  if (f_) std::fclose(f_);
  if (!committed_) std::remove(tmp_.c_str());
}

void AtomicFile::write(const void* data, size_t nbytes) {
  PW_CHECK(f_ != nullptr, "AtomicFile::write: '", path_, "' was already committed");
  if (nbytes == 0) return;
  if (std::fwrite(data, 1, nbytes, f_) != nbytes)
    throw Error("writing '" + tmp_ + "' failed after " + std::to_string(written_) + " bytes: " + errno_str());
  written_ += nbytes;
}

void AtomicFile::commit() {
  PW_CHECK(f_ != nullptr, "AtomicFile::commit: '", path_, "' was already committed");
  // NOTE: fflush only hands the bytes to the kernel; fsync makes them durable
  // before the rename publishes them, else a power cut could leave the new
  // name pointing at an empty or partial file.
  bool ok = std::fflush(f_) == 0 && ::fsync(::fileno(f_)) == 0;
  std::string why = ok ? "" : errno_str();
  bool closed = std::fclose(f_) == 0;
  f_ = nullptr;
  if (!ok || !closed)
    throw Error("flushing '" + tmp_ + "' to disk failed: " + (ok ? errno_str() : why));
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0)
    throw Error("renaming '" + tmp_ + "' to '" + path_ + "' failed: " + errno_str());
  committed_ = true;
  // The rename lives in the directory: sync it too. Some file systems refuse
  // fsync on a directory; the file is already whole, so that is not an error.
  int dfd = ::open(parent_dir(path_).c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomic(const std::string& path, std::string_view contents) {
  AtomicFile f(path);
  f.write(contents);
  f.commit();
}

std::string read_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw Error("cannot open '" + path + "': " + errno_str());
  std::string out;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  bool failed = std::ferror(f) != 0;
  std::string why = failed ? errno_str() : "";
  std::fclose(f);
  if (failed) throw Error("reading '" + path + "' failed: " + why);
  return out;
}

}  // namespace pw
