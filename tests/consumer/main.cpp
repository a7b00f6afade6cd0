// A program built against the installed portres package.
#include <portres/portres.hpp>

#include <iostream>

int main() {
  const portres::port_range range{5000, 20};
  if (range.validate() || portres::port_range(5000, 0).validate() != portres::condition::invalid_argument) {
    std::cerr << "consumer: unexpected validation result\n";
    return 1;
  }
  std::cout << "consumer: " << portres::reservation{range, portres::reservation_token{42}} << '\n';
  return 0;
}
