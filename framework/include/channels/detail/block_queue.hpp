#pragma once
// A FIFO queue in fixed blocks of N, linked: a burst takes blocks as it grows
// and gives each back once read, so nothing queued is ever moved or copied,
// and an empty queue holds one block (or none, once shrunk). The object is
// four words, as small as a vector, for there is one per connection.

#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>

namespace channels::detail {

template <class T, std::size_t N>
class BlockQueue {
  static_assert(N > 1 && N < (1u << 16));  // indices are 16 bits

 public:
  BlockQueue() = default;
  BlockQueue(const BlockQueue&) = delete;
  BlockQueue& operator=(const BlockQueue&) = delete;
  ~BlockQueue() {
    while (head_) free_block(std::exchange(head_, head_->next));
  }

  bool empty() const noexcept { return size_ == 0; }
  std::size_t size() const noexcept { return size_; }

  T& front() noexcept { return head_->items[head_index_]; }

  void push_back(T value) {
    if (!tail_) {
      head_ = tail_ = new_block();
    } else if (tail_index_ == N) {
      tail_->next = new_block();
      tail_ = tail_->next;
      tail_index_ = 0;
    }
    tail_->items[tail_index_++] = std::move(value);
    ++size_;
  }

  void pop_front() noexcept {
    head_->items[head_index_] = T{};  // what it held goes now, not when the block does
    --size_;
    if (++head_index_ == N && head_ != tail_) {
      free_block(std::exchange(head_, head_->next));
      head_index_ = 0;
    } else if (size_ == 0) {
      head_index_ = tail_index_ = 0;  // the one block left starts over
    }
  }

  /// Hands every element to `f`, oldest first, and empties the queue,
  /// keeping one block. `f` should move the element out: the slots are not
  /// reset (a store per element on the fan-out path), so whatever `f` leaves
  /// in one lives until the slot is written again or its block is freed.
  template <class F>
  void drain(F&& f) {
    if (!head_) return;
    for (Block* b = head_; b; b = b->next) {
      const std::size_t from = b == head_ ? head_index_ : 0;
      const std::size_t to = b == tail_ ? tail_index_ : N;
      for (std::size_t i = from; i < to; ++i) f(std::move(b->items[i]));  // left moved-from
    }
    while (head_ != tail_) free_block(std::exchange(head_, head_->next));
    size_ = 0;
    head_index_ = tail_index_ = 0;
  }

  /// Frees the last block of an empty queue.
  void shrink_to_fit() noexcept {
    if (size_ == 0 && head_) {
      free_block(head_);
      head_ = tail_ = nullptr;
      head_index_ = tail_index_ = 0;
    }
  }

  /// Bytes held in blocks, queued elements or not: counted as blocks are
  /// allocated and freed, so a block not given back shows.
  std::size_t held_bytes() const noexcept { return std::size_t(blocks_) * sizeof(Block); }

 private:
  struct Block {
    std::array<T, N> items{};
    Block* next = nullptr;
  };
  Block* new_block() {
    Block* b = new Block;
    ++blocks_;
    return b;
  }
  void free_block(Block* b) noexcept {
    delete b;
    --blocks_;
  }

  Block* head_ = nullptr;
  Block* tail_ = nullptr;
  std::uint16_t head_index_ = 0;  // the oldest element in head_
  std::uint16_t tail_index_ = 0;  // the next free slot in tail_
  std::uint32_t blocks_ = 0;
  std::size_t size_ = 0;
};

}  // namespace channels::detail
